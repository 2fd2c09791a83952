import { useEffect, useState } from 'react';
import { useApi } from '../session.js';
import useFetched from '../hooks/useFetched.js';

function MinutesField({ id, name, label, min, max, value, onChange }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={name}
        type="number"
        inputMode="numeric"
        min={min}
        max={max}
        step="1"
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
    </div>
  );
}

/**
 * Start a session. The defaults shown are the server's (GET /api/config), so the
 * form says what the server will do; a field left empty is left to the server.
 */
export default function StartSessionForm({ courseId, onStarting, onStarted }) {
  const { request } = useApi();
  const { data: config } = useFetched('/api/config');
  const [topic, setTopic] = useState('');
  const [lateAfter, setLateAfter] = useState('');
  const [maxDuration, setMaxDuration] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const limit = config?.max_duration_minutes_limit ?? 1440;

  // Fill in the server's defaults once they arrive, unless the teacher typed first.
  useEffect(() => {
    if (!config) return;
    const maxMinutes = Math.min(config.session_max_minutes, config.max_duration_minutes_limit);
    setMaxDuration((value) => (value === '' ? String(maxMinutes) : value));
    setLateAfter((value) => (value === '' ? String(Math.min(config.late_after_minutes, maxMinutes)) : value));
  }, [config]);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    onStarting?.(true);
    const body = {};
    if (topic.trim()) body.topic = topic.trim();
    if (lateAfter !== '') body.late_after_minutes = Number(lateAfter);
    if (maxDuration !== '') body.max_duration_minutes = Number(maxDuration);
    try {
      const session = await request(`/api/courses/${encodeURIComponent(courseId)}/sessions`, { method: 'POST', body });
      setTopic('');
      onStarted?.(session);
    } catch (err) {
      if (err.status !== 401) setError(`Could not start the session: ${err.detail}`);
    } finally {
      setBusy(false);
      onStarting?.(false);
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
        <MinutesField id="late-after" name="late_after_minutes" label="Late after (minutes)" min={0} max={limit} value={lateAfter} onChange={setLateAfter} />
        <MinutesField
          id="max-duration"
          name="max_duration_minutes"
          label="Maximum duration (minutes)"
          min={1}
          max={limit}
          value={maxDuration}
          onChange={setMaxDuration}
        />
      </div>
      <button type="submit" disabled={busy}>
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
