import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import { FakeSocket } from './fakeSocket.js';
import RosterImport from '../src/components/RosterImport.jsx';
import JoinPage from '../src/components/JoinPage.jsx';
import { SessionContext } from '../src/session.js';

const ME = { id: 'stu-9', name: 'Nadia', email: null, role: 'student' };
const http = useFakeFetch();

function withSession(children) {
  return <SessionContext.Provider value={{ token: 'tok', me: ME, signOut: () => {} }}>{children}</SessionContext.Provider>;
}

function csvFile(text) {
  return new File([text], 'roster.csv', { type: 'text/csv' });
}

describe('RosterImport', () => {
  it('previews bad rows with their lines and offers no import until the file is fixed', async () => {
    const calls = [];
    http.mock.mockImplementation((url, init = {}) => {
      calls.push([url, init.headers['Content-Type'], init.body]);
      if (init.body.includes('bad')) {
        return json({ added: 1, changed: 0, unchanged: 0, dry_run: true, errors: [{ line: 3, message: "email 'bad' is not an email address (name@domain)" }] });
      }
      if (url.endsWith('?dry_run=true')) return json({ added: 2, changed: 1, unchanged: 4, dry_run: true, errors: [] });
      return json({ added: 2, changed: 1, unchanged: 4, dry_run: false, errors: [] });
    });
    let imported = 0;
    render(withSession(<RosterImport courseId="cs 101" onImported={() => { imported += 1; }} />));
    const input = screen.getByLabelText('CSV file');
    fireEvent.change(input, { target: { files: [csvFile('user_id,email\nu1,a@b.c\nu2,bad\n')] } });
    await screen.findByText(/Line 3: email 'bad' is not an email address/);
    expect(screen.queryByRole('button', { name: /^Import/ })).toBeNull();
    expect(calls[0][0]).toBe('/api/courses/cs%20101/enrollments/import?dry_run=true');
    expect(calls[0][1]).toBe('text/csv');

    fireEvent.change(input, { target: { files: [csvFile('user_id,email\nu1,a@b.c\nu2,c@d.e\n')] } });
    const button = await screen.findByRole('button', { name: 'Import 3 changes' });
    fireEvent.click(button);
    await screen.findByText('Imported: 2 added, 1 changed, 4 unchanged.');
    expect(calls.at(-1)[0]).toBe('/api/courses/cs%20101/enrollments/import');
    expect(imported).toBe(1);
  });
});

describe('JoinPage', () => {
  it('joins with the code, waits as pending, and shows the course live once approved', async () => {
    const sockets = [];
    const factory = (url, options) => {
      const socket = new FakeSocket(url, options);
      sockets.push(socket);
      return socket;
    };
    http.mock.mockImplementation((url, init = {}) => {
      if (url === '/api/join') {
        expect(JSON.parse(init.body)).toEqual({ code: 'ABCDEFGH23' });
        return json({ course_id: 'cs101', course_code: 'CS101', course_title: 'Computing', user_id: 'stu-9', status: 'pending' });
      }
      if (url === '/api/courses/cs101') {
        return json({ id: 'cs101', code: 'CS101', title: 'Computing', teacher_id: 't', teacher_name: 'Grace', my_role: 'student' });
      }
      if (url.startsWith('/api/courses/cs101/report')) return json({ course_id: 'cs101', sessions: 0, students: [] });
      return json({}, 404);
    });
    render(withSession(<JoinPage code="ABCDEFGH23" ioFactory={factory} />));
    await screen.findByText(/waiting for the teacher/);
    await waitFor(() => expect(sockets).toHaveLength(1));
    const socket = sockets[0];
    act(() => socket.simulateConnect());
    expect(socket.sent).toContainEqual(['subscribeToCourse', { course_id: 'cs101' }]);
    // refused while pending: the page says nothing alarming
    act(() => socket.serverEmit('activeSessionsError', { code: 'forbidden', course_id: 'cs101', message: 'not approved' }));
    act(() => socket.serverEmit('enrollmentChanged', { course_id: 'other', status: 'approved' }));
    expect(screen.queryByText(/You are enrolled/)).toBeNull();
    act(() => socket.serverEmit('enrollmentChanged', { course_id: 'cs101', status: 'approved' }));
    await screen.findByText(/You are enrolled/);
    await screen.findByRole('heading', { name: 'Course Dashboard' });
    expect(screen.queryByText('not approved')).toBeNull();
    // the same socket, now in the course's room, brings the next session
    act(() => socket.serverEmit('activeSessionsData', {
      course_id: 'cs101',
      activeSessions: [{ sessionId: 's1', teacherId: 't', studentCount: 0, startedAt: '2024-01-15T10:30:00.000Z', topic: 'Week 2' }],
    }));
    await screen.findByRole('heading', { name: 'Week 2' });
    expect(sockets).toHaveLength(1);
  });
});
