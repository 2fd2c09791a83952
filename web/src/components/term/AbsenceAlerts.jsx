import { useEffect, useState } from 'react';
import { useApi } from '../../session.js';
import useFetched from '../../hooks/useFetched.js';
import { formatDateTime } from '../../format.js';

function RulesForm({ courseId }) {
  const { request } = useApi();
  const path = `/api/courses/${encodeURIComponent(courseId)}/absence-rules`;
  const { data: rules } = useFetched(path);
  const [absences, setAbsences] = useState('');
  const [streak, setStreak] = useState('');
  const [rate, setRate] = useState('');
  const [after, setAfter] = useState('4');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    if (!Array.isArray(rules)) return;
    for (const rule of rules) {
      if (rule.kind === 'absences') setAbsences(String(rule.count));
      if (rule.kind === 'streak') setStreak(String(rule.count));
      if (rule.kind === 'rate') {
        setRate(String(Math.round(rule.below * 100)));
        setAfter(String(rule.count));
      }
    }
  }, [rules]);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setMessage(null);
    const body = { rules: [] };
    if (absences !== '') body.rules.push({ kind: 'absences', count: Number(absences) });
    if (streak !== '') body.rules.push({ kind: 'streak', count: Number(streak) });
    if (rate !== '') body.rules.push({ kind: 'rate', count: Number(after || 1), below: Number(rate) / 100 });
    try {
      await request(path, { method: 'PUT', body });
      setMessage(body.rules.length ? 'Thresholds saved.' : 'Absence follow-up is off.');
    } catch (err) {
      if (err.status !== 401) setError(`Could not save the thresholds: ${err.detail}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card absence-rules" onSubmit={submit} aria-labelledby="rules-title">
      <h3 id="rules-title">Absence thresholds</h3>
      <p className="hint">Leave a field empty for no such threshold. You and the student are told once each time one is crossed.</p>
      <div className="fields">
        <div className="field">
          <label htmlFor="rule-absences">Alert after this many absences</label>
          <input id="rule-absences" name="absences" type="number" min={1} value={absences} onChange={(e) => setAbsences(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="rule-streak">… or this many in a row</label>
          <input id="rule-streak" name="streak" type="number" min={1} value={streak} onChange={(e) => setStreak(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="rule-rate">… or attendance below (%)</label>
          <input id="rule-rate" name="rate" type="number" min={1} max={100} value={rate} onChange={(e) => setRate(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="rule-after">after at least (sessions)</label>
          <input id="rule-after" name="after" type="number" min={1} value={after} onChange={(e) => setAfter(e.target.value)} />
        </div>
      </div>
      <button type="submit" disabled={busy}>
        {busy ? 'Saving…' : 'Save thresholds'}
      </button>
      {message && (
        <p className="success" role="status">
          {message}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

/**
 * The course's open absence alerts (live: the `absenceAlert` socket event reloads them), each
 * acknowledgeable, and the thresholds that raise them. A student (`manages` false) sees its own
 * alerts only, as notices.
 */
export default function AbsenceAlerts({ courseId, socket, manages = true }) {
  const { request } = useApi();
  const [arrivals, setArrivals] = useState(0);
  const { data, error: failure, reload } = useFetched(`/api/courses/${encodeURIComponent(courseId)}/alerts`, {
    refreshKey: arrivals,
  });
  const [error, setError] = useState(null);

  useEffect(() => {
    if (!socket) return undefined;
    const arrived = (alert) => {
      if (alert?.course_id === courseId) setArrivals((n) => n + 1);
    };
    socket.on('absenceAlert', arrived);
    return () => socket.off('absenceAlert', arrived);
  }, [socket, courseId]);

  const acknowledge = async (id) => {
    setError(null);
    try {
      await request(`/api/alerts/${encodeURIComponent(id)}/acknowledge`, { method: 'POST' });
      reload();
    } catch (err) {
      if (err.status !== 401) setError(`Could not acknowledge: ${err.detail}`);
    }
  };

  const alerts = Array.isArray(data) ? data : null;
  const loadError = failure && failure.status !== 401 ? failure.detail : null;
  if (!manages) {
    if (!alerts || alerts.length === 0) return null;
    return (
      <section className="absence-alerts" aria-labelledby="notices-title">
        <h2 id="notices-title">Attendance notices</h2>
        <ul className="past-list alert-list">
          {alerts.map((alert) => (
            <li key={alert.id} className="absence-alert notice">
              <strong>{alert.student_message || alert.message}</strong>
              <div className="hint">If something is keeping you away, please talk to your teacher.</div>
            </li>
          ))}
        </ul>
      </section>
    );
  }
  return (
    <section className="absence-alerts" aria-labelledby="alerts-title">
      <h2 id="alerts-title">Absence alerts{alerts ? ` (${alerts.length})` : ''}</h2>
      {loadError && <p className="error" role="alert">Could not load the alerts: {loadError}</p>}
      {alerts && alerts.length === 0 && <p className="empty">No open alerts.</p>}
      {alerts && alerts.length > 0 && (
        <ul className="past-list alert-list" aria-label="Open absence alerts">
          {alerts.map((alert) => (
            <li key={alert.id} className="absence-alert" data-user-id={alert.user_id}>
              <div className="past-summary">
                <div>
                  <strong>{alert.message}</strong>
                  <div className="hint">
                    <time dateTime={alert.created_at}>{formatDateTime(alert.created_at)}</time>
                  </div>
                </div>
                <div className="actions">
                  <button type="button" className="secondary small" onClick={() => acknowledge(alert.id)}>
                    Acknowledge
                  </button>
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <RulesForm courseId={courseId} />
    </section>
  );
}
