// The dashboard's rough edges of issue 24 that need no browser: plurals, and
// ending a session only once the teacher confirms.
import { act, fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import { SessionContext } from '../src/session.js';
import { countOf } from '../src/format.js';
import AttendanceChart from '../src/components/AttendanceChart.jsx';
import CourseReport from '../src/components/CourseReport.jsx';
import LiveSessionPanel from '../src/components/LiveSessionPanel.jsx';

const TEACHER = { id: 't1', name: 'Tess', email: null, role: 'teacher' };
const http = useFakeFetch();

function asTeacher(element) {
  return render(<SessionContext.Provider value={{ token: 'tok', me: TEACHER, signOut: () => {} }}>{element}</SessionContext.Provider>);
}

describe('plurals (Intl.PluralRules)', () => {
  it('says "1 session" and "0 sessions", "2 students"', () => {
    expect(countOf(1, 'session')).toBe('1 session');
    expect(countOf(0, 'session')).toBe('0 sessions');
    expect(countOf(2, 'student')).toBe('2 students');
    expect(countOf(1, 'ended session')).toBe('1 ended session');
  });

  it("the attendance chart's description of one session", () => {
    const { container } = render(
      <AttendanceChart sessions={[{ session_id: 'a', topic: 'Week 1', started_at: '2024-01-15T09:00:00.000Z', status: 'present' }]} />,
    );
    expect(container.querySelector('desc').textContent).toBe('1 session: 1 on time, 0 late, 0 excused, 0 absent.');
  });

  it("the course report's summary of one ended session and one student below the line", async () => {
    const student = (id, present, absent) => ({
      user_id: id, name: id, present, late: 0, absent, excused: 0, sessions: 1, attendance_rate: present,
    });
    http.mock.mockImplementation(() =>
      json({ course_id: 'c1', from: null, to: null, sessions: 1, students: [student('ann', 1, 0), student('bob', 0, 1)] }),
    );
    asTeacher(<CourseReport courseId="c1" />);
    expect((await screen.findByText(/ended session/)).textContent).toMatch(/^1 ended session · 1 student below 80%\./);
  });
});

describe('LiveSessionPanel: ending a session', () => {
  const session = { sessionId: 's1', topic: 'Week 3', startedAt: '2024-01-15T09:00:00.000Z' };

  it('asks first: one click ends nothing, "Keep it running" goes back, "Yes" ends it', async () => {
    http.mock.mockImplementation(() => json({ id: 's1', status: 'ended', statistics: {} }));
    const onEnded = vi.fn();
    asTeacher(<LiveSessionPanel session={session} socket={null} onEnded={onEnded} people={{}} />);

    fireEvent.click(screen.getByRole('button', { name: 'End session' }));
    expect(http.mock).not.toHaveBeenCalled();
    expect(screen.getByText(/End this session for everyone\?/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Keep it running' }));
    expect(screen.queryByText(/End this session for everyone\?/)).toBeNull();
    expect(http.mock).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole('button', { name: 'End session' }));
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Yes, end the session' })));
    expect(http.mock).toHaveBeenCalledTimes(1);
    expect(http.mock.mock.calls[0][0]).toBe('/api/sessions/s1/end');
    expect(onEnded).toHaveBeenCalledWith({ id: 's1', status: 'ended', statistics: {} });
  });
});
