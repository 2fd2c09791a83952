import { useCallback, useEffect, useMemo, useState } from 'react';
import { useApi } from '../session.js';
import { formatTime } from '../format.js';
import useSessionRoster from '../hooks/useSessionRoster.js';
import { ConnectionStatus, SessionNotification, SocketError } from './LiveStatus.jsx';
import Statistics from './Statistics.jsx';
import Roster from './Roster.jsx';
import PastSessions from './PastSessions.jsx';

function StartSessionForm({ courseId, disabled }) {
  const { request } = useApi();
  const [topic, setTopic] = useState('');
  const [lateAfter, setLateAfter] = useState('10');
  const [maxDuration, setMaxDuration] = useState('90');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = {};
    if (topic.trim()) body.topic = topic.trim();
    if (lateAfter !== '') body.late_after_minutes = Number(lateAfter);
    if (maxDuration !== '') body.max_duration_minutes = Number(maxDuration);
    try {
      await request(`/api/courses/${encodeURIComponent(courseId)}/sessions`, { method: 'POST', body });
      setTopic('');
    } catch (err) {
      if (err.status !== 401) setError(`Could not start the session: ${err.detail}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card start-session" onSubmit={submit} aria-labelledby="start-title">
      <h2 id="start-title">Start a session</h2>
      <div className="fields">
        <div className="field">
          <label htmlFor="topic">Topic (optional)</label>
          <input id="topic" name="topic" value={topic} maxLength={200} onChange={(e) => setTopic(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="late-after">Late after (minutes)</label>
          <input
            id="late-after"
            name="late_after_minutes"
            type="number"
            inputMode="numeric"
            min="0"
            max="1440"
            step="1"
            value={lateAfter}
            onChange={(e) => setLateAfter(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="max-duration">Maximum duration (minutes)</label>
          <input
            id="max-duration"
            name="max_duration_minutes"
            type="number"
            inputMode="numeric"
            min="1"
            max="1440"
            step="1"
            value={maxDuration}
            onChange={(e) => setMaxDuration(e.target.value)}
          />
        </div>
      </div>
      <button type="submit" disabled={busy || disabled}>
        {busy ? 'Starting…' : 'Start session'}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function LiveSessionPanel({ session, socket, onEnded, people }) {
  const { request, download } = useApi();
  const { roster, error: rosterError } = useSessionRoster(socket, session.sessionId);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const sessionPath = `/api/sessions/${encodeURIComponent(session.sessionId)}`;
  const titleId = `live-${session.sessionId}-title`;

  const end = async () => {
    setBusy(true);
    setError(null);
    try {
      const ended = await request(`${sessionPath}/end`, { method: 'POST' });
      onEnded(ended);
    } catch (err) {
      if (err.status === 409) setError('This session has already ended.');
      else if (err.status !== 401) setError(`Could not end the session: ${err.detail}`);
    } finally {
      setBusy(false);
    }
  };

  const report = async () => {
    setError(null);
    try {
      await download(`${sessionPath}/report.csv`, `attendance-${session.sessionId}.csv`);
    } catch (err) {
      if (err.status !== 401) setError(`Could not download the report: ${err.detail}`);
    }
  };

  return (
    <article className="card live-session" aria-labelledby={titleId} data-session-id={session.sessionId}>
      <h3 id={titleId}>
        <span className="live-dot" aria-hidden="true" /> {session.topic || 'Attendance session'}
      </h3>
      <p className="hint">
        Started <time dateTime={session.startedAt}>{formatTime(session.startedAt)}</time> · Session ID{' '}
        <code>{session.sessionId}</code>
      </p>
      <Statistics statistics={roster?.statistics} label="Live statistics" />
      {rosterError && (
        <p className="error" role="alert">
          Live roster: {rosterError}
        </p>
      )}
      {roster ? (
        <Roster sessionId={session.sessionId} records={roster.records} editable people={people} />
      ) : (
        !rosterError && <p role="status">Loading the roster…</p>
      )}
      <div className="actions">
        <button type="button" className="danger" onClick={end} disabled={busy}>
          {busy ? 'Ending…' : 'End session'}
        </button>
        <button type="button" className="secondary" onClick={report}>
          Download CSV report
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}

function EndedSummary({ summary, onDismiss }) {
  return (
    <section className="card ended-summary" aria-labelledby="ended-title" data-session-id={summary.sessionId}>
      <h3 id="ended-title">Session ended{summary.topic ? `: ${summary.topic}` : ''}</h3>
      <p>
        Ended at <time dateTime={summary.endedAt}>{formatTime(summary.endedAt)}</time>
        {summary.endedBy ? ` by ${summary.endedBy}` : ''}. Final statistics:
      </p>
      <Statistics statistics={summary.statistics} label="Final statistics" />
      <button type="button" className="secondary small" onClick={onDismiss}>
        Close summary
      </button>
    </section>
  );
}

export default function TeacherView({ course, tracking }) {
  const {
    socket, activeSessions, isConnected, hasActiveSessions, connectionError, lastNotification, lastError,
    dismissNotification,
  } = tracking;
  const [summary, setSummary] = useState(null);
  const people = useMemo(() => ({ [course.teacher_id]: course.teacher_name }), [course.teacher_id, course.teacher_name]);

  const onEnded = useCallback((session) => {
    setSummary({
      sessionId: session.id,
      topic: session.topic,
      endedAt: session.ended_at,
      endedBy: session.ended_by,
      statistics: session.final_statistics ?? session.statistics,
    });
  }, []);

  // A session can also end elsewhere: another admin, or the timer (`system`).
  useEffect(() => {
    if (lastNotification?.type !== 'ended') return;
    const { data } = lastNotification;
    setSummary((current) =>
      current?.sessionId === data.session_id
        ? current
        : {
            sessionId: data.session_id,
            topic: data.topic,
            endedAt: data.ended_at,
            endedBy: data.ended_by,
            statistics: data.final_statistics,
          },
    );
  }, [lastNotification]);

  return (
    <div className="teacher-view">
      <ConnectionStatus isConnected={isConnected} connectionError={connectionError} />
      <SessionNotification notification={lastNotification} onDismiss={dismissNotification} />
      <SocketError error={lastError} />
      <StartSessionForm courseId={course.id} />
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
    </div>
  );
}
