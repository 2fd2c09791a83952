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
  // Code mode is what the dashboard offers first: a check-in needs the code on the projector.
  const [mode, setMode] = useState('code');
  const [period, setPeriod] = useState('15');
  const [networks, setNetworks] = useState('');
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
    body.check_in_mode = mode;
    if (mode === 'code' && period !== '') body.code_period_seconds = Number(period);
    const cidrs = networks.split(/[\s,]+/).filter(Boolean);
    if (cidrs.length) body.allowed_networks = cidrs;
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
        <div className="field">
          <label htmlFor="check-in-mode">Check-in</label>
          <select id="check-in-mode" name="check_in_mode" value={mode} onChange={(e) => setMode(e.target.value)}>
            <option value="code">With a rotating code (projector)</option>
            <option value="open">Open: any approved student</option>
          </select>
        </div>
        {mode === 'code' && (
          <MinutesField id="code-period" name="code_period_seconds" label="New code every (seconds)" min={5} max={300} value={period} onChange={setPeriod} />
        )}
        <div className="field wide">
          <label htmlFor="allowed-networks">Only from these networks (optional)</label>
          {/* One grid cell under the label: the hint stays below the input, never on it. */}
          <div className="field-control">
            <input
              id="allowed-networks"
              name="allowed_networks"
              value={networks}
              placeholder="e.g. 10.20.0.0/16, 2001:db8:20::/48"
              onChange={(e) => setNetworks(e.target.value)}
              aria-describedby="allowed-networks-hint"
            />
            <p className="hint" id="allowed-networks-hint">Empty: anywhere. CIDR networks, separated by commas.</p>
          </div>
        </div>
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
