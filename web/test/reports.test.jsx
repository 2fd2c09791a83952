import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import CourseReport from '../src/components/CourseReport.jsx';
import MyAttendance from '../src/components/MyAttendance.jsx';
import Statistics from '../src/components/Statistics.jsx';
import Roster from '../src/components/Roster.jsx';
import { SessionContext } from '../src/session.js';

const TEACHER = { id: 't', name: 'Tess', email: null, role: 'teacher' };
const STUDENT = { id: 'ann', name: 'Ann', email: null, role: 'student' };

function row(user_id, name, present, late, absent, excused, sessions, attendance_rate) {
  return { user_id, name, present, late, absent, excused, sessions, attendance_rate };
}

const REPORT = {
  course_id: 'c1',
  sessions: 4,
  from: null,
  to: null,
  students: [
    row('ann', 'Ann', 3, 1, 0, 0, 4, 1),
    row('bob', 'Bob', 1, 0, 3, 0, 4, 0.25),
    row('cy', 'Cy', 0, 0, 0, 4, 4, null),
    row('dee', 'Dee', 2, 0, 1, 1, 4, 0.6667),
  ],
};

function renderAs(me, ui) {
  return render(<SessionContext.Provider value={{ token: 'tok', me, signOut: () => {} }}>{ui}</SessionContext.Provider>);
}

function order(container) {
  return [...container.querySelectorAll('.report-table tbody tr')].map((tr) => tr.dataset.userId);
}

const http = useFakeFetch();

describe('CourseReport', () => {
  it('sorts by a column, marks the students below the threshold, and asks again for a date range', async () => {
    http.mock.mockImplementation((url) => json({ ...REPORT, from: url.includes('from=') ? '2024-01-01' : null }));
    const { container } = renderAs(TEACHER, <CourseReport courseId="c1" refreshKey={0} />);
    await screen.findByText('Bob');
    expect(http.mock).toHaveBeenCalledWith('/api/courses/c1/report', expect.anything());
    expect(order(container)).toEqual(['ann', 'bob', 'cy', 'dee']);
    expect(screen.getByRole('status').textContent).toContain('4 ended sessions · 2 students below 80%');
    // Below 80 %: Bob (25 %) and Dee (67 %); Cy has no rate (all excused) and is not flagged.
    expect([...container.querySelectorAll('tr.below-threshold')].map((tr) => tr.dataset.userId)).toEqual(['bob', 'dee']);
    expect(within(container.querySelector('tr[data-user-id="cy"]')).getByText('—')).toBeTruthy();

    const rate = screen.getByRole('button', { name: /^Attendance/ });
    fireEvent.click(rate);
    expect(rate.closest('th').getAttribute('aria-sort')).toBe('ascending');
    expect(order(container)).toEqual(['bob', 'dee', 'ann', 'cy']); // no rate last
    fireEvent.click(rate);
    expect(rate.closest('th').getAttribute('aria-sort')).toBe('descending');
    expect(order(container)).toEqual(['ann', 'dee', 'bob', 'cy']);
    fireEvent.click(screen.getByRole('button', { name: /^Absent/ }));
    expect(order(container)).toEqual(['ann', 'cy', 'dee', 'bob']);

    fireEvent.change(screen.getByLabelText('Highlight below (%)'), { target: { value: '50' } });
    expect([...container.querySelectorAll('tr.below-threshold')].map((tr) => tr.dataset.userId)).toEqual(['bob']);

    fireEvent.change(screen.getByLabelText('From'), { target: { value: '2024-01-01' } });
    await waitFor(() =>
      expect(http.mock).toHaveBeenCalledWith('/api/courses/c1/report?from=2024-01-01', expect.anything()),
    );
  });

  it("shows the server's message for a bad range", async () => {
    http.mock.mockImplementation(() => json({ detail: 'from=2024-02-01 is after to=2024-01-01: swap them' }, 422));
    renderAs(TEACHER, <CourseReport courseId="c1" refreshKey={0} />);
    expect((await screen.findByRole('alert')).textContent).toContain('is after to=2024-01-01: swap them');
  });

  it('downloads the CSV of the same range with the token', async () => {
    http.mock.mockImplementation((url) =>
      url.endsWith('.csv')
        ? Promise.resolve(new Response('user_id,name\r\n', { headers: { 'Content-Disposition': 'attachment; filename="attendance-c1.csv"' } }))
        : json(REPORT),
    );
    const createObjectURL = vi.fn(() => 'blob:x');
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL, revokeObjectURL: vi.fn() }));
    renderAs(TEACHER, <CourseReport courseId="c1" refreshKey={0} />);
    await screen.findByText('Bob');
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Download course report (CSV)' })));
    const [url, init] = http.mock.mock.calls.find(([u]) => u.endsWith('.csv'));
    expect(url).toBe('/api/courses/c1/report.csv');
    expect(init.headers.Authorization).toBe('Bearer tok');
    expect(createObjectURL).toHaveBeenCalledTimes(1);
  });
});

describe('MyAttendance', () => {
  it("draws one mark per session in its status's row, and says the totals", async () => {
    const sessions = [
      { session_id: 'a', topic: 'Week 1', started_at: '2024-01-15T09:00:00.000Z', status: 'present' },
      { session_id: 'b', topic: null, started_at: '2024-01-16T09:00:00.000Z', status: 'late' },
      { session_id: 'c', topic: null, started_at: '2024-01-17T09:00:00.000Z', status: 'excused' },
      { session_id: 'd', topic: null, started_at: '2024-01-18T09:00:00.000Z', status: 'absent' },
    ];
    http.mock.mockImplementation((url) =>
      url.endsWith('/students/ann')
        ? json({ course_id: 'c1', user_id: 'ann', name: 'Ann', from: null, to: null, sessions })
        : json({ ...REPORT, students: [row('ann', 'Ann', 1, 1, 1, 1, 4, 0.6667)] }),
    );
    const { container } = renderAs(STUDENT, <MyAttendance courseId="c1" refreshKey={0} />);
    await waitFor(() => expect(container.querySelectorAll('circle[data-status]')).toHaveLength(4));
    const marks = [...container.querySelectorAll('circle[data-status]')];
    expect(marks.map((m) => m.dataset.status)).toEqual(['present', 'late', 'excused', 'absent']);
    // Each status has its own row: the marks are at four different heights, left to right.
    expect(new Set(marks.map((m) => m.getAttribute('cy'))).size).toBe(4);
    const xs = marks.map((m) => Number(m.getAttribute('cx')));
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(container.querySelector('.my-rate').textContent).toContain('Attendance 67%');
    const svg = container.querySelector('svg[role="img"]');
    expect(svg.querySelector('desc').textContent).toBe('4 sessions: 1 on time, 1 late, 1 excused, 1 absent.');
    expect(http.mock).toHaveBeenCalledWith('/api/courses/c1/report/students/ann', expect.anything());
  });

  it('says so when there is nothing yet', async () => {
    http.mock.mockImplementation((url) =>
      url.endsWith('/students/ann')
        ? json({ course_id: 'c1', user_id: 'ann', name: 'Ann', from: null, to: null, sessions: [] })
        : json({ ...REPORT, sessions: 0, students: [row('ann', 'Ann', 0, 0, 0, 0, 0, null)] }),
    );
    renderAs(STUDENT, <MyAttendance courseId="c1" refreshKey={0} />);
    expect(await screen.findByText('No ended sessions yet.')).toBeTruthy();
    expect(screen.getByText(/No attendance rate yet/)).toBeTruthy();
  });
});

describe('Statistics', () => {
  it('shows tiles that add up to the total, and attended apart', () => {
    const { container } = render(
      <Statistics statistics={{ present: 3, late: 1, absent: 2, excused: 1, total: 6, attendance_rate: 0.5 }} label="x" />,
    );
    const tile = (key) => Number(container.querySelector(`[data-stat="${key}"] dd`).textContent);
    expect([tile('on-time'), tile('late'), tile('absent'), tile('excused')]).toEqual([2, 1, 2, 1]);
    expect(tile('on-time') + tile('late') + tile('absent') + tile('excused')).toBe(tile('total'));
    expect(container.querySelector('[data-stat="attended"]').textContent).toBe('Attended (on time or late): 3 of 6 · 50%');
  });
});

describe('Roster status control', () => {
  const record = { user_id: 'bob', name: 'Bob', status: 'absent', marked_at: null, marked_by: null, remarks: null };

  it('saves a status as soon as it is chosen, and a remark only on demand', async () => {
    http.mock.mockImplementation((url, init) => json({ ...record, ...JSON.parse(init.body) }));
    renderAs(TEACHER, <Roster sessionId="s1" records={[record]} editable />);
    expect(screen.queryByLabelText('Remarks for Bob')).toBeNull();
    await act(async () => fireEvent.change(screen.getByLabelText('Status for Bob'), { target: { value: 'excused' } }));
    expect(http.mock).toHaveBeenCalledTimes(1);
    const [url, init] = http.mock.mock.calls[0];
    expect([url, init.method, JSON.parse(init.body)]).toEqual(['/api/sessions/s1/records/bob', 'PUT', { status: 'excused' }]);
    expect(await screen.findByText('Excused saved')).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: 'Add remark for Bob' }));
    fireEvent.change(screen.getByLabelText('Remarks for Bob'), { target: { value: ' Doctor ' } });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Save remark for Bob' })));
    expect(JSON.parse(http.mock.mock.calls[1][1].body)).toEqual({ status: 'excused', remarks: 'Doctor' });
    expect(screen.queryByLabelText('Remarks for Bob')).toBeNull();
  });

  it('goes back to the stored status when the save is refused', async () => {
    http.mock.mockImplementation(() => json({ detail: 'Session has ended; its records are final' }, 409));
    renderAs(TEACHER, <Roster sessionId="s1" records={[record]} editable />);
    const select = screen.getByLabelText('Status for Bob');
    await act(async () => fireEvent.change(select, { target: { value: 'late' } }));
    expect(await screen.findByText(/Late not saved: Session has ended/)).toBeTruthy();
    expect(select.value).toBe('absent');
  });
});

describe('TeacherView', () => {
  const course = { id: 'c1', code: 'C1', title: 'Course', teacher_id: 't', teacher_name: 'Tess', my_role: 'teacher' };
  const tracking = (lastNotification) => ({
    socket: null,
    activeSessions: [],
    isConnected: true,
    hasActiveSessions: false,
    connectionError: null,
    lastNotification,
    lastError: null,
    dismissNotification: () => {},
  });
  const started = (sessionId) => ({
    type: 'started', courseId: 'c1', sessionId, receivedAt: Date.now(),
    data: { session_id: sessionId, started_by: 'Tess', started_at: '2024-01-15T09:00:00.000Z' },
  });

  it("fills the start form with the server's defaults and shows no banner for a session started here", async () => {
    const { default: TeacherView } = await import('../src/components/TeacherView.jsx');
    http.mock.mockImplementation((url, init) => {
      if (url === '/api/config') return json({ session_max_minutes: 180, late_after_minutes: 10, max_duration_minutes_limit: 1440 });
      if (url === '/api/courses/c1/sessions' && init.method === 'POST') return json({ id: 'mine', course_id: 'c1' }, 201);
      if (url === '/api/courses/c1/sessions') return json([{ id: 'mine', status: 'active' }]);
      return json(REPORT);
    });
    const view = (n) => (
      <SessionContext.Provider value={{ token: 'tok', me: TEACHER, signOut: () => {} }}>
        <TeacherView course={course} tracking={tracking(n)} />
      </SessionContext.Provider>
    );
    const { container, rerender } = render(view(null));
    await waitFor(() => expect(screen.getByLabelText('Maximum duration (minutes)').value).toBe('180'));
    expect(screen.getByLabelText('Late after (minutes)').value).toBe('10');
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Start session' })));
    const post = http.mock.mock.calls.find(([, init]) => init.method === 'POST');
    // Code mode is what the dashboard offers first (issue 11), with the server's default period.
    expect(JSON.parse(post[1].body)).toEqual({
      late_after_minutes: 10,
      max_duration_minutes: 180,
      check_in_mode: 'code',
      code_period_seconds: 15,
    });

    rerender(view(started('mine')));
    expect(container.querySelector('.notification-started')).toBeNull();
    rerender(view(started('someone-elses')));
    expect(container.querySelector('.notification-started')).not.toBeNull();
    // The live session is not listed again among the past ones.
    await waitFor(() => expect(screen.getByText('No ended sessions yet.')).toBeTruthy());
  });
});
