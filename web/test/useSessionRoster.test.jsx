import { act, renderHook } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import useSessionRoster from '../src/hooks/useSessionRoster.js';
import { FakeSocket } from './fakeSocket.js';

const STATS = { present: 0, late: 0, absent: 2, excused: 0, total: 2, attendance_rate: 0 };
const RECORDS = [
  { user_id: 'u1', name: 'Ann', status: 'absent', marked_at: null, marked_by: null, remarks: null },
  { user_id: 'u2', name: 'Bob', status: 'absent', marked_at: null, marked_by: null, remarks: null },
];

function setup({ connected = true } = {}) {
  const socket = new FakeSocket('x', {});
  socket.connected = connected;
  const view = renderHook(({ id }) => useSessionRoster(socket, id), { initialProps: { id: 's1' } });
  return { socket, view };
}

describe('useSessionRoster', () => {
  it('subscribes at once when the socket is connected, and again on every reconnect', () => {
    const { socket } = setup();
    expect(socket.sentEvents('subscribeToSession')).toEqual([{ session_id: 's1' }]);
    act(() => socket.simulateDisconnect());
    act(() => socket.simulateConnect());
    expect(socket.sentEvents('subscribeToSession')).toEqual([{ session_id: 's1' }, { session_id: 's1' }]);
  });

  it('waits for the connection when not yet connected', () => {
    const { socket } = setup({ connected: false });
    expect(socket.sentEvents('subscribeToSession')).toEqual([]);
    act(() => socket.simulateConnect());
    expect(socket.sentEvents('subscribeToSession')).toEqual([{ session_id: 's1' }]);
  });

  it('takes the roster, then applies attendance updates', () => {
    const { socket, view } = setup();
    act(() => socket.serverEmit('sessionRosterData', {
      session_id: 's1', course_id: 'c1', status: 'active', statistics: STATS, records: RECORDS,
    }));
    expect(view.result.current.roster).toEqual({ status: 'active', statistics: STATS, records: RECORDS });

    const newStats = { ...STATS, present: 1, absent: 1, attendance_rate: 0.5 };
    act(() => socket.serverEmit('attendanceUpdated', {
      session_id: 's1', course_id: 'c1', user_id: 'u1', name: 'Ann', status: 'present',
      marked_at: '2024-01-15T10:31:00.000Z', marked_by: 'Ann', remarks: null, statistics: newStats,
    }));
    const { roster } = view.result.current;
    expect(roster.statistics).toEqual(newStats);
    expect(roster.records[0]).toMatchObject({ user_id: 'u1', status: 'present', marked_at: '2024-01-15T10:31:00.000Z' });
    expect(roster.records[1]).toEqual(RECORDS[1]);

    // A student approved after the start joins the roster on check-in.
    act(() => socket.serverEmit('attendanceUpdated', {
      session_id: 's1', course_id: 'c1', user_id: 'u3', name: 'Cy', status: 'late',
      marked_at: '2024-01-15T10:50:00.000Z', marked_by: 'Cy', remarks: null, statistics: newStats,
    }));
    expect(view.result.current.roster.records.map((r) => r.user_id)).toEqual(['u1', 'u2', 'u3']);
  });

  it('ignores other sessions and reports its own errors', () => {
    const { socket, view } = setup();
    act(() => socket.serverEmit('sessionRosterData', { session_id: 's2', status: 'active', records: RECORDS }));
    act(() => socket.serverEmit('attendanceUpdated', { session_id: 's2', user_id: 'u1', status: 'present' }));
    expect(view.result.current.roster).toBeNull();
    act(() => socket.serverEmit('activeSessionsError', { session_id: 's2', message: 'other' }));
    expect(view.result.current.error).toBeNull();
    act(() => socket.serverEmit('activeSessionsError', { session_id: 's1', message: 'Forbidden', code: 'forbidden' }));
    expect(view.result.current.error).toBe('Forbidden');
  });

  it('unsubscribes and removes its listeners on unmount', () => {
    const { socket, view } = setup();
    view.unmount();
    expect(socket.sentEvents('unsubscribeFromSession')).toEqual([{ session_id: 's1' }]);
    expect(socket.listenerCount()).toBe(0);
  });
});
