import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../session.js';
import { formatTime, statusLabel } from '../format.js';
import useFetched from '../hooks/useFetched.js';
import { ConnectionStatus, SessionNotification, SocketError } from './LiveStatus.jsx';
import MyAttendance from './MyAttendance.jsx';
import CheckInForm from './CheckInForm.jsx';

const CHECKED_IN = new Set(['present', 'late']);

function describeOwnStatus(record) {
  if (!record) return 'Not checked in';
  if (CHECKED_IN.has(record.status)) {
    return `${statusLabel(record.status)}${record.marked_at ? ` (since ${formatTime(record.marked_at)})` : ''}`;
  }
  if (record.status === 'excused') return 'Excused';
  if (record.status === 'absent' && record.marked_at) return 'Marked absent by your teacher';
  return 'Not checked in';
}

/** One live session as the student sees it: the seed's card plus a check-in (with the room's code in code mode). */
function StudentSessionCard({ session, announced, socket }) {
  const { me } = useSession();
  const [latest, setLatest] = useState(null);
  const sessionId = session.sessionId;

  // The session body holds only this student's own record. It is fetched again
  // whenever the session's count changes, which catches a teacher's override too.
  const { data: body, error: loadError } = useFetched(`/api/sessions/${encodeURIComponent(sessionId)}`, {
    refreshKey: session.studentCount,
  });
  useEffect(() => setLatest(null), [body]);
  // The server announces changes to this student's own record (myAttendanceUpdated):
  // a teacher's override shows at once, even when the session's count does not move.
  useEffect(() => {
    if (announced) setLatest(announced);
  }, [announced]);
  const record = latest ?? (body ? (body.records ?? []).find((r) => r.user_id === me.id) ?? null : null);
  const loaded = latest != null || body != null;

  const onCheckedIn = useCallback((updated) => setLatest(updated), []);

  const checkedIn = record && CHECKED_IN.has(record.status);
  const teacherMarked = record && !checkedIn && record.marked_at != null;
  const titleId = `session-${sessionId}-title`;

  return (
    <article className="session-card" aria-labelledby={titleId} data-session-id={sessionId}>
      <h4 id={titleId}>{session.topic || 'Attendance session'}</h4>
      <p>
        Students: {session.studentCount}
        {typeof session.totalStudents === 'number' ? ` of ${session.totalStudents}` : ''} checked in
      </p>
      <p>
        Started: <time dateTime={session.startedAt}>{formatTime(session.startedAt)}</time>
      </p>
      <p className="my-status" aria-live="polite">
        Your status:{' '}
        <strong className={`badge badge-${record?.status ?? 'none'}`} data-status={record?.status ?? 'none'}>
          {loaded ? describeOwnStatus(record) : '…'}
        </strong>
      </p>
      {checkedIn || teacherMarked || !body ? (
        <button type="button" className="check-in" disabled aria-describedby={titleId}>
          {checkedIn
            ? record.marked_by && record.marked_by !== me.id
              ? 'Marked by your teacher'
              : 'Checked in'
            : teacherMarked
              ? `Marked ${statusLabel(record.status).toLowerCase()} by your teacher`
              : 'Check in'}
        </button>
      ) : (
        <CheckInForm sessionId={sessionId} codeMode={body.check_in_mode === 'code'} onCheckedIn={onCheckedIn} socket={socket} />
      )}
      {loadError && loadError.status !== 401 && (
        <p className="error" role="alert">
          Could not load your status: {loadError.detail}
        </p>
      )}
    </article>
  );
}

/** The student's live view: the seed component's markup and class names. */
export default function StudentView({ course, tracking }) {
  const {
    activeSessions, isConnected, hasActiveSessions, connectionError, lastNotification, lastError,
    dismissNotification, myRecords = {}, reconnecting, socket = null,
  } = tracking;

  return (
    <div className="student-view">
      <h2>Course Dashboard</h2>
      <ConnectionStatus isConnected={isConnected} connectionError={connectionError} reconnecting={reconnecting} />
      <SessionNotification notification={lastNotification} onDismiss={dismissNotification} />
      <SocketError error={lastError} />
      {hasActiveSessions ? (
        <div className="active-sessions">
          <h3>
            <span className="live-dot" aria-hidden="true" /> Live Attendance Sessions ({activeSessions.length})
          </h3>
          {activeSessions.map((session) => (
            <StudentSessionCard
              key={session.sessionId}
              session={session}
              announced={myRecords[session.sessionId]}
              socket={socket}
            />
          ))}
        </div>
      ) : (
        <div className="no-sessions">
          <p>No active attendance sessions</p>
        </div>
      )}
      {course && (
        <MyAttendance
          courseId={course.id}
          refreshKey={lastNotification?.type === 'ended' ? lastNotification.receivedAt : 0}
        />
      )}
    </div>
  );
}
