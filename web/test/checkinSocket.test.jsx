// The check-in's choice of path: the live socket (`checkIn` with an ack) when it is connected,
// HTTP otherwise or when the socket cannot carry it, with the same messages either way.
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import { FakeSocket } from './fakeSocket.js';
import { SessionContext } from '../src/session.js';
import { apiRequest } from '../src/api.js';
import CheckInForm from '../src/components/CheckInForm.jsx';
import { deviceId, refusalMessage, socketRefusalError, submitCheckIn } from '../src/checkin.js';

const STUDENT = { id: 'stu-1', name: 'Ann', email: null, role: 'student' };
const RECORD = {
  user_id: 'stu-1', name: 'Ann', status: 'present', marked_at: '2024-01-15T10:31:00.000Z', marked_by: 'stu-1',
  remarks: null, audit: null, code_attempts_blocked_at: null,
};
const request = (path, options) => apiRequest(path, { ...options, token: 'tok' });

function connectedSocket() {
  const socket = new FakeSocket('http://test', {});
  socket.connected = true;
  return socket;
}

const http = useFakeFetch();

function httpAnswers(body, status = 200) {
  const posts = [];
  http.mock.mockImplementation((url, init = {}) => {
    posts.push([url, JSON.parse(init.body)]);
    return json(body, status);
  });
  return posts;
}

describe('submitCheckIn', () => {
  it('checks in on the connected socket, with the same body plus the session, and no HTTP request', async () => {
    const posts = httpAnswers(RECORD);
    const socket = connectedSocket();
    const done = submitCheckIn(request, 's1', ' 7hk-x3m ', socket);
    const waiting = socket.ackNext(null, { ok: true, record: RECORD });
    expect(waiting.event).toBe('checkIn');
    expect(waiting.payload).toEqual({ session_id: 's1', device_id: deviceId(), code: '7HKX3M' });
    expect(waiting.timeoutMs).toBe(5000);
    await expect(done).resolves.toEqual(RECORD);
    expect(posts).toEqual([]);
  });

  it('uses HTTP when there is no socket or it is not connected', async () => {
    const posts = httpAnswers(RECORD);
    await expect(submitCheckIn(request, 's1', '', null)).resolves.toEqual(RECORD);
    const offline = new FakeSocket('http://test', {});
    await expect(submitCheckIn(request, 's1', 'ABCDEF', offline)).resolves.toEqual(RECORD);
    expect(offline.sent).toEqual([]);
    expect(posts).toEqual([
      ['/api/sessions/s1/check-in', { device_id: deviceId() }],
      ['/api/sessions/s1/check-in', { device_id: deviceId(), code: 'ABCDEF' }],
    ]);
  });

  it('falls back to HTTP when the socket does not answer in time or is over its event rate', async () => {
    const posts = httpAnswers(RECORD);
    const socket = connectedSocket();
    const timedOut = submitCheckIn(request, 's1', '', socket);
    socket.ackNext(new Error('operation has timed out'));
    await expect(timedOut).resolves.toEqual(RECORD);
    const limited = submitCheckIn(request, 's1', '', socket);
    socket.ackNext(null, { ok: false, reason: 'rate_limited', message: 'Too many events', retry_after: 1 });
    await expect(limited).resolves.toEqual(RECORD);
    expect(posts).toHaveLength(2);
  });

  it('turns a socket refusal into the error HTTP would have given, so the message is the same', async () => {
    httpAnswers({ detail: 'never asked' }, 500);
    const socket = connectedSocket();
    const refused = submitCheckIn(request, 's1', 'AAAAAA', socket);
    socket.ackNext(null, { ok: false, reason: 'code_invalid', message: 'That check-in code is wrong' });
    const error = await refused.catch((e) => e);
    expect([error.status, error.reason, error.detail]).toEqual([403, 'code_invalid', 'That check-in code is wrong']);
    expect(http.mock).not.toHaveBeenCalled();

    const cases = [
      [{ reason: 'session_ended', message: "Session 's1' has ended" }, { status: 409, detail: "Session 's1' has ended" }],
      [{ reason: 'not_found', message: "Session 's1' not found" }, { status: 404, detail: "Session 's1' not found" }],
      [{ reason: 'forbidden', message: 'Only approved students' }, { status: 403, detail: 'Only approved students' }],
      [{ reason: 'network_not_allowed', message: 'Wi-Fi' }, { status: 403, reason: 'network_not_allowed', detail: 'Wi-Fi' }],
      [{ reason: 'too_many_attempts', message: 'Too many wrong codes' }, { status: 429, reason: 'too_many_attempts', detail: 'Too many wrong codes' }],
    ];
    for (const [answer, httpError] of cases) {
      expect(refusalMessage(socketRefusalError({ ok: false, ...answer }))).toEqual(refusalMessage(httpError));
    }
  });
});

describe('CheckInForm', () => {
  function form(socket) {
    return render(
      <SessionContext.Provider value={{ token: 'tok', me: STUDENT, signOut: () => {} }}>
        <CheckInForm sessionId="s1" codeMode socket={socket} />
      </SessionContext.Provider>,
    );
  }

  it('shows the same advice for a refusal over the socket as over HTTP', async () => {
    const socket = connectedSocket();
    form(socket);
    fireEvent.change(screen.getByLabelText('Code shown in the room'), { target: { value: 'aaaaaa' } });
    fireEvent.click(screen.getByRole('button', { name: 'Check in' }));
    await waitFor(() => expect(socket.acks).toHaveLength(1));
    socket.ackNext(null, { ok: false, reason: 'code_invalid', message: 'That check-in code is wrong' });
    const overSocket = (await screen.findByRole('alert')).textContent;
    expect(screen.getByRole('alert').dataset.reason).toBe('code_invalid');

    httpAnswers({ detail: 'That check-in code is wrong', reason: 'code_invalid' }, 403);
    socket.connected = false;
    fireEvent.click(screen.getByRole('button', { name: 'Check in' }));
    await waitFor(() => expect(http.mock).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.getByRole('button', { name: 'Check in' }).disabled).toBe(false));
    expect(screen.getByRole('alert').textContent).toBe(overSocket);
    expect(socket.acks).toHaveLength(0);
  });
});
