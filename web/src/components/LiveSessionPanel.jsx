import { useState } from 'react';
import { useApi } from '../session.js';
import { formatTime } from '../format.js';
import { linkHandler } from '../router.js';
import { projectorPath } from '../checkin.js';
import useSessionRoster from '../hooks/useSessionRoster.js';
import Statistics from './Statistics.jsx';
import Roster from './Roster.jsx';

/** One live session for its teacher: live statistics and roster, end, CSV report. */
export default function LiveSessionPanel({ session, socket, onEnded, people }) {
  const { request, download } = useApi();
  const { roster, error: rosterError, checkInCode } = useSessionRoster(socket, session.sessionId);
  const projector = projectorPath(session.sessionId);
  const [busy, setBusy] = useState(false);
  // Ending closes check-in for everyone and cannot be undone: the first click asks.
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const sessionPath = `/api/sessions/${encodeURIComponent(session.sessionId)}`;
  const titleId = `live-${session.sessionId}-title`;

  const end = async () => {
    setConfirming(false);
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
      await download(`${sessionPath}/report.csv`, 'attendance.csv');
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
        Started <time dateTime={session.startedAt}>{formatTime(session.startedAt)}</time>
      </p>
      {checkInCode && (
        <p className="current-code">
          Check-in code: <strong data-code={checkInCode.code}>{checkInCode.code}</strong>{' '}
          <a href={projector} onClick={linkHandler(projector)} className="button-link">
            Open the projector view
          </a>
        </p>
      )}
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
      {confirming ? (
        <div className="actions confirm-end" role="group" aria-labelledby={`${titleId}-confirm`}>
          <p id={`${titleId}-confirm`} className="confirm-question">
            End this session for everyone? Check-in closes and cannot be reopened.
          </p>
          <button type="button" className="danger" onClick={end}>
            Yes, end the session
          </button>
          <button type="button" className="secondary" onClick={() => setConfirming(false)} autoFocus>
            Keep it running
          </button>
        </div>
      ) : (
        <div className="actions">
          <button type="button" className="danger" onClick={() => setConfirming(true)} disabled={busy}>
            {busy ? 'Ending…' : 'End session'}
          </button>
          <button type="button" className="secondary" onClick={report}>
            Download CSV report
          </button>
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}
