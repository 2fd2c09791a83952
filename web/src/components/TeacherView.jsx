import { useCallback, useEffect, useMemo, useState } from 'react';
import { ConnectionStatus, SessionNotification, SocketError } from './LiveStatus.jsx';
import StartSessionForm from './StartSessionForm.jsx';
import LiveSessionPanel from './LiveSessionPanel.jsx';
import EndedSummary from './EndedSummary.jsx';
import PastSessions from './PastSessions.jsx';
import CourseReport from './CourseReport.jsx';

function summaryOf(session) {
  return {
    sessionId: session.id,
    topic: session.topic,
    endedAt: session.ended_at,
    endedBy: session.ended_by,
    statistics: session.final_statistics ?? session.statistics,
  };
}

/**
 * The teacher's console: start, the live sessions, the summary of the one that
 * just ended, past sessions and the course report. The course's banner is for
 * news: a session this teacher started here, or one whose summary is already
 * on screen, gets none.
 */
export default function TeacherView({ course, tracking }) {
  const {
    socket, activeSessions, isConnected, hasActiveSessions, connectionError, lastNotification, lastError,
    dismissNotification, reconnecting,
  } = tracking;
  const [summary, setSummary] = useState(null);
  const [starting, setStarting] = useState(false);
  const [startedHere, setStartedHere] = useState(() => new Set());
  const people = useMemo(() => ({ [course.teacher_id]: course.teacher_name }), [course.teacher_id, course.teacher_name]);

  const onEnded = useCallback((session) => setSummary(summaryOf(session)), []);
  const onStarted = useCallback((session) => setStartedHere((ids) => new Set(ids).add(session.id)), []);

  // A session can also end elsewhere: another admin, or the timer (`system`).
  useEffect(() => {
    if (lastNotification?.type !== 'ended') return;
    const { data } = lastNotification;
    setSummary((current) =>
      current?.sessionId === data.session_id
        ? current
        : summaryOf({ ...data, id: data.session_id, statistics: data.final_statistics }),
    );
  }, [lastNotification]);

  const own =
    lastNotification &&
    ((lastNotification.type === 'started' && (starting || startedHere.has(lastNotification.sessionId))) ||
      (lastNotification.type === 'ended' && summary?.sessionId === lastNotification.sessionId));

  return (
    <div className="teacher-view">
      <ConnectionStatus isConnected={isConnected} connectionError={connectionError} reconnecting={reconnecting} />
      <SessionNotification notification={own ? null : lastNotification} onDismiss={dismissNotification} />
      <SocketError error={lastError} />
      <StartSessionForm courseId={course.id} onStarting={setStarting} onStarted={onStarted} />
      <section aria-labelledby="live-title">
        <h2 id="live-title">Live sessions ({activeSessions.length})</h2>
        {summary && <EndedSummary summary={summary} onDismiss={() => setSummary(null)} />}
        {hasActiveSessions ? (
          <div className="active-sessions">
            {activeSessions.map((session) => (
              <LiveSessionPanel key={session.sessionId} session={session} socket={socket} onEnded={onEnded} people={people} />
            ))}
          </div>
        ) : (
          <div className="no-sessions">
            <p>No active attendance sessions</p>
          </div>
        )}
      </section>
      <PastSessions courseId={course.id} refreshKey={lastNotification?.receivedAt ?? 0} people={people} />
      <CourseReport courseId={course.id} refreshKey={summary?.sessionId ?? ''} />
    </div>
  );
}
