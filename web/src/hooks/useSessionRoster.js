// The teacher's live roster of one session: `subscribeToSession {session_id}`
// answers `sessionRosterData`, then every record change arrives as
// `attendanceUpdated`; a session in code mode also sends `checkInCode` at once
// and at every rotation. Like the course hook, it subscribes again on every
// reconnect, and unsubscribes when the panel goes away.
import { useEffect, useState } from 'react';

/**
 * @param {import('socket.io-client').Socket|null} socket the course hook's socket
 * @param {string|null} sessionId
 * @returns {{roster: null|{status: string, statistics: object, records: object[]}, error: string|null,
 *   checkInCode: null|{session_id: string, code: string, period_seconds: number, expires_at: string, check_in_url: string}}}
 */
export default function useSessionRoster(socket, sessionId) {
  const [roster, setRoster] = useState(null);
  const [error, setError] = useState(null);
  const [checkInCode, setCheckInCode] = useState(null);

  useEffect(() => {
    if (!socket || !sessionId) return undefined;
    setRoster(null);
    setError(null);
    setCheckInCode(null);

    const subscribe = () => socket.emit('subscribeToSession', { session_id: sessionId });
    const onRoster = (data) => {
      if (data?.session_id !== sessionId) return;
      setError(null);
      setRoster({
        status: data.status,
        statistics: data.statistics ?? null,
        records: Array.isArray(data.records) ? data.records : [],
      });
    };
    const onUpdated = (data) => {
      if (data?.session_id !== sessionId) return;
      setRoster((current) => {
        const base = current ?? { status: 'active', statistics: null, records: [] };
        const record = {
          user_id: data.user_id,
          name: data.name,
          status: data.status,
          marked_at: data.marked_at,
          marked_by: data.marked_by,
          remarks: data.remarks,
          audit: data.audit ?? null,
        };
        const index = base.records.findIndex((r) => r.user_id === data.user_id);
        const records = index === -1
          ? [...base.records, record] // a student approved after the start
          : base.records.map((r, i) => (i === index ? { ...r, ...record } : r));
        return { ...base, records, statistics: data.statistics ?? base.statistics };
      });
    };
    const onCode = (data) => {
      if (data?.session_id === sessionId) setCheckInCode(data);
    };
    const onError = (data) => {
      if (data?.session_id !== sessionId) return;
      setError(data.message || 'The live roster is unavailable');
    };

    socket.on('connect', subscribe);
    socket.on('sessionRosterData', onRoster);
    socket.on('attendanceUpdated', onUpdated);
    socket.on('checkInCode', onCode);
    socket.on('activeSessionsError', onError);
    if (socket.connected) subscribe();

    return () => {
      if (socket.connected) socket.emit('unsubscribeFromSession', { session_id: sessionId });
      socket.off('connect', subscribe);
      socket.off('sessionRosterData', onRoster);
      socket.off('attendanceUpdated', onUpdated);
      socket.off('checkInCode', onCode);
      socket.off('activeSessionsError', onError);
    };
  }, [socket, sessionId]);

  return { roster, error, checkInCode };
}
