import { useMemo, useState } from 'react';
import { useApi } from '../../session.js';
import useFetched from '../../hooks/useFetched.js';
import { formatTime } from '../../format.js';

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

const STATE_LABELS = {
  planned: 'Planned',
  starting: 'Starting',
  running: 'Running',
  held: 'Held',
  skipped: 'Skipped',
  missed: 'Not held',
};

/** What became of a planned session, in one word for its badge. */
export function stateOf(plan) {
  if (plan.status === 'started') return plan.session_status === 'active' ? 'running' : 'held';
  return plan.status;
}

function isoDate(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function SlotForm({ courseId, onPlanned }) {
  const { request } = useApi();
  const today = new Date();
  const [weekday, setWeekday] = useState(WEEKDAYS[(today.getDay() + 6) % 7]);
  const [startTime, setStartTime] = useState('10:00');
  const [duration, setDuration] = useState('90');
  const [firstDate, setFirstDate] = useState(isoDate(today));
  const [lastDate, setLastDate] = useState(isoDate(new Date(today.getTime() + 13 * 7 * 86_400_000)));
  const [timezone, setTimezone] = useState(browserZone());
  const [topic, setTopic] = useState('');
  const [location, setLocation] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    const body = {
      weekday,
      start_time: startTime,
      duration_minutes: Number(duration),
      timezone: timezone.trim(),
      first_date: firstDate,
      last_date: lastDate,
      check_in_mode: 'open',
    };
    if (topic.trim()) body.topic = topic.trim();
    if (location.trim()) body.location = location.trim();
    try {
      const slot = await request(`/api/courses/${encodeURIComponent(courseId)}/timetable/slots`, { method: 'POST', body });
      setDone(`Planned ${slot.planned} session${slot.planned === 1 ? '' : 's'}.`);
      onPlanned?.();
    } catch (err) {
      if (err.status !== 401) setError(`Could not plan the slot: ${err.detail}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card term-slot-form" onSubmit={submit} aria-labelledby="slot-title">
      <h3 id="slot-title">Plan a weekly slot</h3>
      <div className="fields">
        <div className="field">
          <label htmlFor="slot-weekday">Weekday</label>
          <select id="slot-weekday" name="weekday" value={weekday} onChange={(e) => setWeekday(e.target.value)}>
            {WEEKDAYS.map((day) => (
              <option key={day} value={day}>
                {day[0].toUpperCase() + day.slice(1)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="slot-start">Start time</label>
          <input id="slot-start" name="start_time" type="time" required value={startTime} onChange={(e) => setStartTime(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-duration">Length (minutes)</label>
          <input id="slot-duration" name="duration_minutes" type="number" min={1} max={1440} required value={duration} onChange={(e) => setDuration(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-first">First day</label>
          <input id="slot-first" name="first_date" type="date" required value={firstDate} onChange={(e) => setFirstDate(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-last">Last day</label>
          <input id="slot-last" name="last_date" type="date" required value={lastDate} onChange={(e) => setLastDate(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-zone">Time zone</label>
          <input id="slot-zone" name="timezone" required value={timezone} onChange={(e) => setTimezone(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-topic">Topic of its sessions (optional)</label>
          <input id="slot-topic" name="topic" maxLength={200} value={topic} onChange={(e) => setTopic(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="slot-location">Room (optional)</label>
          <input id="slot-location" name="location" maxLength={200} value={location} onChange={(e) => setLocation(e.target.value)} />
        </div>
      </div>
      <button type="submit" disabled={busy}>
        {busy ? 'Planning…' : 'Plan slot'}
      </button>
      {done && (
        <p className="success" role="status">
          {done}
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

function CalendarLink() {
  const { request } = useApi();
  const [link, setLink] = useState(null);
  const [error, setError] = useState(null);
  const make = async () => {
    setError(null);
    try {
      const made = await request('/api/calendar/token', { method: 'POST' });
      setLink(made.url);
    } catch (err) {
      if (err.status !== 401) setError(`Could not make the link: ${err.detail}`);
    }
  };
  return (
    <div className="term-calendar-link">
      <button type="button" className="secondary small" onClick={make}>
        {link ? 'Make a new calendar link' : 'Subscribe in your calendar app'}
      </button>
      {link && (
        <p className="hint">
          <label htmlFor="calendar-link">Your private calendar link (all your courses; a new link replaces it):</label>{' '}
          <input id="calendar-link" readOnly value={link} onFocus={(e) => e.target.select()} />
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function PlanRow({ plan, manages, onChanged }) {
  const { request } = useApi();
  const [error, setError] = useState(null);
  const state = stateOf(plan);
  const act = async (what) => {
    setError(null);
    try {
      await request(`/api/planned-sessions/${encodeURIComponent(plan.id)}/${what}`, { method: 'POST' });
      onChanged();
    } catch (err) {
      if (err.status !== 401) setError(err.detail);
    }
  };
  const starts = new Date(plan.starts_at);
  return (
    <li className="term-plan" data-plan-id={plan.id} data-state={state}>
      <div className="past-summary">
        <div>
          <strong>{starts.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' })}</strong>{' '}
          <time dateTime={plan.starts_at}>{formatTime(plan.starts_at)}</time>–<time dateTime={plan.ends_at}>{formatTime(plan.ends_at)}</time>{' '}
          <span className={`badge term-badge term-${state}`}>{STATE_LABELS[state] ?? state}</span>
          <div className="hint">
            {plan.topic || 'Session'}
            {plan.location ? ` · ${plan.location}` : ''}
          </div>
        </div>
        {manages && plan.status === 'planned' && (
          <div className="actions">
            <button type="button" className="secondary small" onClick={() => act('start')}>
              Start now
            </button>
            <button type="button" className="secondary small" onClick={() => act('skip')}>
              Skip
            </button>
          </div>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

/**
 * The term's calendar: every planned session of the course and what became of it, refreshed when a
 * session starts or ends (a planned one starts by itself). Managers plan weekly slots and start or
 * skip a planned session here.
 */
export default function TermCalendar({ courseId, manages, liveKey }) {
  const [changes, setChanges] = useState(0);
  const refreshKey = `${liveKey}|${changes}`;
  const { data, error: failure } = useFetched(`/api/courses/${encodeURIComponent(courseId)}/planned-sessions`, { refreshKey });
  const plans = useMemo(() => (Array.isArray(data) ? data : null), [data]);
  const error = failure && failure.status !== 401 ? failure.detail : null;
  const changed = () => setChanges((n) => n + 1);

  return (
    <section className="term-calendar" aria-labelledby="term-title">
      <h2 id="term-title">Term calendar</h2>
      {manages && <SlotForm courseId={courseId} onPlanned={changed} />}
      {error && <p className="error" role="alert">Could not load the calendar: {error}</p>}
      {!plans && !error && <p role="status">Loading…</p>}
      {plans && plans.length === 0 && <p className="empty">Nothing planned yet.</p>}
      {plans && plans.length > 0 && (
        <ul className="past-list term-list" aria-label="Planned sessions">
          {plans.map((plan) => (
            <PlanRow key={plan.id} plan={plan} manages={manages} onChanged={changed} />
          ))}
        </ul>
      )}
      <CalendarLink />
    </section>
  );
}
