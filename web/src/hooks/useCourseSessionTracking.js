// The seed's hook, made real: same name, signature and return value
// (`{socket, activeSessions, isConnected, hasActiveSessions}`), plus what the
// seed's best practices ask for: resubscription on every (re)connect, cleanup on
// unmount, the connection error, and the last session started/ended notification.
// A new token for the same socket (a renewal) is sent with `refreshToken` and used
// for any reconnection; the socket stays open, so no event is missed.
import { useCallback, useEffect, useRef, useState } from 'react';
import { io } from 'socket.io-client';

/**
 * @typedef {{sessionId: string, teacherId: string, studentCount: number,
 *            startedAt: string, topic?: string|null, totalStudents?: number}} ActiveSession
 * @typedef {{type: 'started'|'ended', courseId: string, sessionId: string,
 *            data: object, receivedAt: number}} SessionNotification
 */

/**
 * Track the live attendance sessions of one course over Socket.IO.
 *
 * @param {string} courseId
 * @param {string} authToken the JWT, sent as the handshake's `auth.token`
 * @param {{ioFactory?: typeof io, url?: string}} [options] `ioFactory` replaces
 *   socket.io-client's `io` (tests inject a fake socket); `url` defaults to the
 *   page's own origin, since the same server serves this app and the socket.
 */
export default function useCourseSessionTracking(courseId, authToken, options = {}) {
  const { url } = options;
  // Held in a ref so that an inline factory does not reconnect on every render.
  const factoryRef = useRef(options.ioFactory ?? io);
  factoryRef.current = options.ioFactory ?? io;

  const [socket, setSocket] = useState(null);
  const [activeSessions, setActiveSessions] = useState([]);
  const [isConnected, setIsConnected] = useState(false);
  // Disconnected, but socket.io-client is coming back by itself (a blip, a restart): the server
  // then recovers the connection's subscriptions and missed events (connection state recovery).
  const [reconnecting, setReconnecting] = useState(false);
  const [connectionError, setConnectionError] = useState(null);
  const [lastNotification, setLastNotification] = useState(null);
  const [lastError, setLastError] = useState(null);
  // The caller's own attendance record per session, as the server last announced it.
  const [myRecords, setMyRecords] = useState({});
  // The handshake's auth object: a renewed token replaces its `token`, which
  // socket.io-client sends on its next (re)connection.
  const authRef = useRef(null);
  const tokenRef = useRef(authToken);
  const hasToken = Boolean(authToken);

  useEffect(() => {
    const previous = tokenRef.current;
    tokenRef.current = authToken;
    if (!authToken || authToken === previous || !socket) return;
    if (authRef.current) authRef.current.token = authToken;
    if (socket.connected) socket.emit('refreshToken', { token: authToken });
  }, [authToken, socket]);

  useEffect(() => {
    if (!courseId || !hasToken) return undefined;

    setActiveSessions([]);
    setLastNotification(null);
    setLastError(null);
    setConnectionError(null);
    setReconnecting(false);
    setMyRecords({});

    const auth = { token: tokenRef.current };
    authRef.current = auth;
    const newSocket = factoryRef.current(url ?? window.location.origin, { auth });
    const forThisCourse = (data) => data != null && data.course_id === courseId;

    const handlers = {
      // Every connect, the first and each reconnection, subscribes again: the
      // server forgets a socket's rooms when its connection drops.
      connect: () => {
        setIsConnected(true);
        setReconnecting(false);
        setConnectionError(null);
        newSocket.emit('subscribeToCourse', { course_id: courseId });
      },
      disconnect: (reason) => {
        setIsConnected(false);
        // Only a disconnect asked for by the server or this page is final.
        setReconnecting(reason !== 'io server disconnect' && reason !== 'io client disconnect');
      },
      connect_error: (error) => {
        setIsConnected(false);
        // A refusal (bad or expired token) stops socket.io-client's retries; a network error does not.
        setReconnecting(newSocket.active === true);
        setConnectionError(error?.message || 'Could not connect');
      },
      courseSessionStarted: (data) => {
        if (!forThisCourse(data)) return;
        setLastNotification({
          type: 'started', courseId, sessionId: data.session_id, data, receivedAt: Date.now(),
        });
      },
      courseSessionEnded: (data) => {
        if (!forThisCourse(data)) return;
        // activeSessionsData follows; dropping the card now keeps the view honest
        // even if that message is lost.
        setActiveSessions((current) => current.filter((s) => s.sessionId !== data.session_id));
        setLastNotification({
          type: 'ended', courseId, sessionId: data.session_id, data, receivedAt: Date.now(),
        });
      },
      activeSessionsData: (data) => {
        if (forThisCourse(data) && Array.isArray(data.activeSessions)) {
          setActiveSessions(data.activeSessions);
        }
      },
      activeSessionsResponse: (data) => {
        if (forThisCourse(data) && Array.isArray(data.activeSessions)) {
          setActiveSessions(data.activeSessions);
        }
      },
      // A change to the caller's own record (a check-in elsewhere, a teacher's override).
      myAttendanceUpdated: (data) => {
        if (!forThisCourse(data) || typeof data.session_id !== 'string') return;
        setMyRecords((current) => ({ ...current, [data.session_id]: data }));
      },
      activeSessionsError: (error) => {
        // Errors about another course (or about a session, handled by the
        // roster hook) are not this hook's business.
        if (error?.course_id != null && error.course_id !== courseId) return;
        if (error?.session_id != null) return;
        setLastError({ message: error?.message || 'Unknown error', code: error?.code ?? null });
      },
    };

    for (const [event, handler] of Object.entries(handlers)) newSocket.on(event, handler);
    setSocket(newSocket);

    return () => {
      newSocket.emit('unsubscribeFromCourse', { course_id: courseId });
      for (const [event, handler] of Object.entries(handlers)) newSocket.off(event, handler);
      newSocket.disconnect();
      setSocket(null);
      setIsConnected(false);
      setReconnecting(false);
    };
  }, [courseId, hasToken, url]);

  /** Ask once for the current active sessions (`checkActiveSessions`). */
  const checkActiveSessions = useCallback(() => {
    if (socket && courseId) socket.emit('checkActiveSessions', { course_id: courseId });
  }, [socket, courseId]);

  const dismissNotification = useCallback(() => setLastNotification(null), []);

  return {
    socket,
    activeSessions,
    isConnected,
    hasActiveSessions: activeSessions.length > 0,
    // Additions beyond the seed's return value.
    reconnecting,
    connectionError,
    lastNotification,
    lastError,
    myRecords,
    checkActiveSessions,
    dismissNotification,
  };
}

export { useCourseSessionTracking };
