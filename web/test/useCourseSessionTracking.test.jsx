import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import useCourseSessionTracking from '../src/hooks/useCourseSessionTracking.js';
import { fakeIo } from './fakeSocket.js';

const SESSION = { sessionId: 's1', teacherId: 't1', studentCount: 0, startedAt: '2024-01-15T10:30:00.000Z' };

function setup(courseId = 'c1', token = 'tok') {
  const ioFactory = fakeIo();
  const view = renderHook(({ id, tok }) => useCourseSessionTracking(id, tok, { ioFactory }), {
    initialProps: { id: courseId, tok: token },
  });
  return { ioFactory, view, socket: () => ioFactory.sockets.at(-1) };
}

describe('useCourseSessionTracking', () => {
  it('returns the seed shape and opens no socket without a course or a token', () => {
    const ioFactory = fakeIo();
    const { result, rerender } = renderHook(({ id, tok }) => useCourseSessionTracking(id, tok, { ioFactory }), {
      initialProps: { id: null, tok: 'tok' },
    });
    expect(result.current).toMatchObject({ socket: null, activeSessions: [], isConnected: false, hasActiveSessions: false });
    rerender({ id: 'c1', tok: null });
    expect(ioFactory.sockets).toHaveLength(0);
  });

  it('connects to the page origin with the token in the handshake auth', () => {
    const { socket, view } = setup();
    expect(socket().url).toBe(window.location.origin);
    expect(socket().options).toEqual({ auth: { token: 'tok' } });
    expect(view.result.current.socket).toBe(socket());
    expect(view.result.current.isConnected).toBe(false);
    expect(socket().sentEvents('subscribeToCourse')).toEqual([]);
  });

  it('subscribes to the course on connect', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    expect(view.result.current.isConnected).toBe(true);
    expect(socket().sentEvents('subscribeToCourse')).toEqual([{ course_id: 'c1' }]);
  });

  it('subscribes again after a reconnect', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    act(() => socket().simulateDisconnect('transport close'));
    expect(view.result.current.isConnected).toBe(false);
    act(() => socket().simulateConnect());
    expect(view.result.current.isConnected).toBe(true);
    expect(socket().sentEvents('subscribeToCourse')).toEqual([{ course_id: 'c1' }, { course_id: 'c1' }]);
  });

  it('is reconnecting after a blip, and disconnected only when the server or the page ended it', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    expect(view.result.current.reconnecting).toBe(false);
    act(() => socket().simulateDisconnect('transport close'));
    expect(view.result.current).toMatchObject({ isConnected: false, reconnecting: true });
    act(() => socket().simulateConnect());
    expect(view.result.current).toMatchObject({ isConnected: true, reconnecting: false });
    act(() => socket().simulateDisconnect('io server disconnect'));
    expect(view.result.current).toMatchObject({ isConnected: false, reconnecting: false });
  });

  it('keeps the active sessions of its own course only', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [SESSION] }));
    expect(view.result.current.activeSessions).toEqual([SESSION]);
    expect(view.result.current.hasActiveSessions).toBe(true);

    act(() => socket().serverEmit('activeSessionsData', { course_id: 'other', activeSessions: [] }));
    expect(view.result.current.activeSessions).toEqual([SESSION]);

    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [] }));
    expect(view.result.current.hasActiveSessions).toBe(false);
  });

  it('ignores malformed active-session payloads', () => {
    const { socket, view } = setup();
    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [SESSION] }));
    act(() => socket().serverEmit('activeSessionsData', null));
    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1' }));
    expect(view.result.current.activeSessions).toEqual([SESSION]);
  });

  it('answers checkActiveSessions through activeSessionsResponse', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    act(() => view.result.current.checkActiveSessions());
    expect(socket().sentEvents('checkActiveSessions')).toEqual([{ course_id: 'c1' }]);
    act(() => socket().serverEmit('activeSessionsResponse', { course_id: 'c1', activeSessions: [SESSION] }));
    expect(view.result.current.activeSessions).toEqual([SESSION]);
  });

  it('notifies when a session of its course starts or ends', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    const started = {
      course_id: 'c1', session_id: 's1', teacher_id: 't1', teacher_name: 'Ada',
      started_by: 'Ada', started_at: '2024-01-15T10:30:00.000Z',
    };
    act(() => socket().serverEmit('courseSessionStarted', started));
    expect(view.result.current.lastNotification).toMatchObject({ type: 'started', courseId: 'c1', sessionId: 's1', data: started });

    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [SESSION] }));
    const ended = {
      course_id: 'c1', session_id: 's1', teacher_id: 't1', teacher_name: 'Ada',
      final_statistics: { present: 1, absent: 2, total: 3 }, ended_by: 'Ada', ended_at: '2024-01-15T11:30:00.000Z',
    };
    act(() => socket().serverEmit('courseSessionEnded', ended));
    expect(view.result.current.lastNotification).toMatchObject({ type: 'ended', sessionId: 's1', data: ended });
    // The ended session's card goes at once, before activeSessionsData confirms it.
    expect(view.result.current.activeSessions).toEqual([]);

    act(() => view.result.current.dismissNotification());
    expect(view.result.current.lastNotification).toBeNull();
  });

  it("keeps the caller's own records as the server announces them, for its course only", () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    expect(view.result.current.myRecords).toEqual({});
    const mine = {
      session_id: 's1', course_id: 'c1', user_id: 'u1', name: 'Alice', status: 'excused',
      marked_at: '2024-01-15T10:35:00.000Z', marked_by: 't1', remarks: 'match day',
    };
    act(() => socket().serverEmit('myAttendanceUpdated', mine));
    act(() => socket().serverEmit('myAttendanceUpdated', { ...mine, course_id: 'c2', session_id: 'x' }));
    expect(view.result.current.myRecords).toEqual({ s1: mine });
    act(() => socket().serverEmit('myAttendanceUpdated', { ...mine, status: 'present' }));
    expect(view.result.current.myRecords.s1.status).toBe('present');
  });

  it('ignores notifications about other courses', () => {
    const { socket, view } = setup();
    act(() => socket().serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [SESSION] }));
    act(() => socket().serverEmit('courseSessionStarted', { course_id: 'c2', session_id: 'x' }));
    act(() => socket().serverEmit('courseSessionEnded', { course_id: 'c2', session_id: 's1' }));
    expect(view.result.current.lastNotification).toBeNull();
    expect(view.result.current.activeSessions).toEqual([SESSION]);
  });

  it('reports connection errors and server errors for its course', () => {
    const { socket, view } = setup();
    act(() => socket().fire('connect_error', new Error('Invalid token')));
    expect(view.result.current.connectionError).toBe('Invalid token');
    expect(view.result.current.isConnected).toBe(false);

    act(() => socket().serverEmit('activeSessionsError', { message: 'nope', code: 'forbidden', course_id: 'c2' }));
    expect(view.result.current.lastError).toBeNull();
    act(() => socket().serverEmit('activeSessionsError', { message: 'Not allowed', code: 'forbidden', course_id: 'c1' }));
    expect(view.result.current.lastError).toEqual({ message: 'Not allowed', code: 'forbidden' });

    act(() => socket().simulateConnect());
    expect(view.result.current.connectionError).toBeNull();
  });

  it('unsubscribes, disconnects and drops its listeners on unmount', () => {
    const { socket, view } = setup();
    act(() => socket().simulateConnect());
    const s = socket();
    view.unmount();
    expect(s.sentEvents('unsubscribeFromCourse')).toEqual([{ course_id: 'c1' }]);
    expect(s.disconnectCalls).toBe(1);
    expect(s.listenerCount()).toBe(0);
  });

  it('moves to a new socket when the course changes', () => {
    const { ioFactory, view } = setup();
    const first = ioFactory.sockets[0];
    act(() => first.simulateConnect());
    act(() => first.serverEmit('activeSessionsData', { course_id: 'c1', activeSessions: [SESSION] }));

    view.rerender({ id: 'c2', tok: 'tok' });
    expect(first.sentEvents('unsubscribeFromCourse')).toEqual([{ course_id: 'c1' }]);
    expect(first.disconnectCalls).toBe(1);
    expect(view.result.current.activeSessions).toEqual([]);

    const second = ioFactory.sockets[1];
    act(() => second.simulateConnect());
    expect(second.sentEvents('subscribeToCourse')).toEqual([{ course_id: 'c2' }]);
    expect(view.result.current.socket).toBe(second);
  });

  it('sends a renewed token with refreshToken on the same socket, and uses it to reconnect', () => {
    const { view, socket, ioFactory } = setup('c1', 'tok');
    act(() => socket().simulateConnect());
    view.rerender({ id: 'c1', tok: 'tok2' });
    expect(ioFactory.sockets).toHaveLength(1); // no new connection: no event can be missed
    expect(socket().disconnectCalls).toBe(0);
    expect(socket().sent).toContainEqual(['refreshToken', { token: 'tok2' }]);
    expect(socket().options.auth.token).toBe('tok2'); // what a reconnection sends
  });

  it('does not reconnect when re-rendered with the same course and token', () => {
    const ioFactory = fakeIo();
    const { rerender } = renderHook(() => useCourseSessionTracking('c1', 'tok', { ioFactory: (...a) => ioFactory(...a) }));
    rerender();
    rerender();
    expect(ioFactory.sockets).toHaveLength(1);
  });
});
