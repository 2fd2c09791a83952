import { useState } from 'react';
import { useApi } from '../session.js';
import { formatDateTime, formatRate, formatTime } from '../format.js';
import useFetched from '../hooks/useFetched.js';
import Roster from './Roster.jsx';

function SessionDetails({ sessionId, people }) {
  const { data: session, error } = useFetched(`/api/sessions/${encodeURIComponent(sessionId)}`);
  if (error && error.status !== 401) return <p className="error" role="alert">Could not load the records: {error.detail}</p>;
  if (!session) return <p role="status">Loading records…</p>;
  return <Roster sessionId={sessionId} records={session.records ?? []} people={people} />;
}

function PastSessionRow({ session, people }) {
  const { download } = useApi();
  const [open, setOpen] = useState(false);
  const [error, setError] = useState(null);
  // A live session's counts are in its live panel; this list is not refreshed per check-in.
  const stats = session.status === 'active' ? null : session.final_statistics ?? session.statistics;
  const detailsId = `past-${session.id}-details`.replace(/[^A-Za-z0-9_-]/g, '_');

  const report = async () => {
    setError(null);
    try {
      await download(`/api/sessions/${encodeURIComponent(session.id)}/report.csv`, `attendance-${session.id}.csv`);
    } catch (err) {
      if (err.status !== 401) setError(`Could not download the report: ${err.detail}`);
    }
  };

  return (
    <li className="past-session" data-session-id={session.id} data-status={session.status}>
      <div className="past-summary">
        <div>
          <strong>{session.topic || 'Attendance session'}</strong>{' '}
          <span className={`badge badge-${session.status === 'active' ? 'present' : 'ended'}`}>
            {session.status === 'active' ? 'Live' : 'Ended'}
          </span>
          <div className="hint">
            <time dateTime={session.started_at}>{formatDateTime(session.started_at)}</time>
            {session.ended_at ? (
              <>
                {' – '}
                <time dateTime={session.ended_at}>{formatTime(session.ended_at)}</time>
                {session.ended_by ? ` (ended by ${session.ended_by})` : ''}
              </>
            ) : null}
          </div>
          {stats && (
            <div className="hint">
              Attended {stats.present} of {stats.total} (late included)
              {typeof stats.attendance_rate === 'number' ? ` (${formatRate(stats.attendance_rate)})` : ''}
            </div>
          )}
        </div>
        <div className="actions">
          <button
            type="button"
            className="secondary small"
            aria-expanded={open}
            aria-controls={detailsId}
            onClick={() => setOpen((value) => !value)}
          >
            {open ? 'Hide records' : 'Show records'}
          </button>
          <button type="button" className="secondary small" onClick={report}>
            Download CSV
          </button>
        </div>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div id={detailsId}>{open && <SessionDetails sessionId={session.id} people={people} />}</div>
    </li>
  );
}

/** The course's sessions, newest first, refreshed whenever one starts or ends. */
export default function PastSessions({ courseId, refreshKey, people }) {
  const { data, error: failure } = useFetched(`/api/courses/${encodeURIComponent(courseId)}/sessions`, { refreshKey });
  // The live sessions have their own panels above: listed here once they end.
  const sessions = data ? (Array.isArray(data) ? data : []).filter((s) => s.status !== 'active') : null;
  const error = failure && failure.status !== 401 ? failure.detail : null;

  return (
    <section className="past-sessions" aria-labelledby="past-title">
      <h2 id="past-title">Past sessions</h2>
      {error && <p className="error" role="alert">Could not load the sessions: {error}</p>}
      {!sessions && !error && <p role="status">Loading…</p>}
      {sessions && sessions.length === 0 && <p className="empty">No ended sessions yet.</p>}
      {sessions && sessions.length > 0 && (
        <ul className="past-list">
          {sessions.map((session) => (
            <PastSessionRow key={session.id} session={session} people={people} />
          ))}
        </ul>
      )}
    </section>
  );
}
