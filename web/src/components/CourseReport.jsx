import { useMemo, useState } from 'react';
import { useApi } from '../session.js';
import { countOf, formatRate } from '../format.js';
import useFetched from '../hooks/useFetched.js';

const COLUMNS = [
  ['name', 'Student'],
  ['present', 'On time'],
  ['late', 'Late'],
  ['absent', 'Absent'],
  ['excused', 'Excused'],
  ['sessions', 'Sessions'],
  ['attendance_rate', 'Attendance'],
];

export function reportQuery(from, to) {
  const query = new URLSearchParams();
  if (from) query.set('from', from);
  if (to) query.set('to', to);
  const text = query.toString();
  return text ? `?${text}` : '';
}

function compare(key, direction) {
  return (a, b) => {
    const x = a[key];
    const y = b[key];
    // A student with no rate (no sessions, or all excused) sorts last either way.
    if (x == null || y == null) return (x == null) - (y == null);
    const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return (direction === 'ascending' ? order : -order) || a.user_id.localeCompare(b.user_id);
  };
}

/**
 * The course report for its teacher: one row per student over the ended
 * sessions, sortable, the students below a threshold marked, and the CSV.
 */
export default function CourseReport({ courseId, refreshKey }) {
  const { download } = useApi();
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [threshold, setThreshold] = useState('80');
  const [sort, setSort] = useState({ key: 'name', direction: 'ascending' });
  const [downloadError, setDownloadError] = useState(null);
  const base = `/api/courses/${encodeURIComponent(courseId)}`;
  const query = reportQuery(from, to);
  const { data: report, error } = useFetched(`${base}/report${query}`, { refreshKey });
  const limit = Number(threshold) / 100;
  const rows = useMemo(
    () => (report ? [...report.students].sort(compare(sort.key, sort.direction)) : []),
    [report, sort],
  );
  const below = (row) => row.attendance_rate != null && threshold !== '' && row.attendance_rate < limit;
  const belowCount = rows.filter(below).length;

  const sortBy = (key) =>
    setSort((current) => ({
      key,
      direction: current.key === key && current.direction === 'ascending' ? 'descending' : 'ascending',
    }));

  const csv = async () => {
    setDownloadError(null);
    try {
      await download(`${base}/report.csv${query}`, `attendance-${courseId}.csv`);
    } catch (err) {
      if (err.status !== 401) setDownloadError(`Could not download the report: ${err.detail}`);
    }
  };

  return (
    <section className="card course-report" aria-labelledby="report-title">
      <h2 id="report-title">Course report</h2>
      <div className="fields report-filters">
        <div className="field">
          <label htmlFor="report-from">From</label>
          <input id="report-from" type="date" value={from} max={to || undefined} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="report-to">To</label>
          <input id="report-to" type="date" value={to} min={from || undefined} onChange={(e) => setTo(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="report-threshold">Highlight below (%)</label>
          <input
            id="report-threshold"
            type="number"
            inputMode="numeric"
            min="0"
            max="100"
            step="1"
            value={threshold}
            onChange={(e) => setThreshold(e.target.value)}
          />
        </div>
      </div>
      {error && error.status !== 401 && (
        <p className="error" role="alert">
          Could not load the report: {error.detail}
        </p>
      )}
      {!report && !error && <p role="status">Loading the report…</p>}
      {report && (
        <>
          <p className="hint" role="status">
            {countOf(report.sessions, 'ended session')}
            {threshold !== '' ? ` · ${countOf(belowCount, 'student')} below ${threshold}%` : ''}.
            Attendance = (on time + late) ÷ (sessions − excused).
          </p>
          {rows.length === 0 ? (
            <p className="empty">No students on this course's roster.</p>
          ) : (
            <div className="table-wrap">
              {/* At phone width the table's headings are hidden (one card per student): sort here. */}
              <div className="report-sort">
                <label htmlFor="report-sort">Sort by</label>
                <select
                  id="report-sort"
                  value={sort.key}
                  onChange={(e) => setSort({ key: e.target.value, direction: 'ascending' })}
                >
                  {COLUMNS.map(([key, label]) => (
                    <option key={key} value={key}>
                      {label}
                    </option>
                  ))}
                </select>
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => sortBy(sort.key)}
                  aria-label={`Sorted ${sort.direction}: reverse the order`}
                >
                  {sort.direction === 'ascending' ? 'Ascending ▲' : 'Descending ▼'}
                </button>
              </div>
              <table className="report-table">
                <caption className="visually-hidden">Attendance per student; select a column heading to sort</caption>
                <thead>
                  <tr>
                    {COLUMNS.map(([key, label]) => (
                      <th key={key} scope="col" aria-sort={sort.key === key ? sort.direction : undefined}>
                        <button type="button" className="sort" onClick={() => sortBy(key)}>
                          {label}
                          <span aria-hidden="true">{sort.key === key ? (sort.direction === 'ascending' ? ' ▲' : ' ▼') : ''}</span>
                        </button>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <tr key={row.user_id} data-user-id={row.user_id} className={below(row) ? 'below-threshold' : undefined}>
                      <th scope="row" data-label="Student">
                        {row.name || row.user_id}
                        {below(row) && <span className="badge badge-absent below-flag">below {threshold}%</span>}
                      </th>
                      <td data-label="On time">{row.present}</td>
                      <td data-label="Late">{row.late}</td>
                      <td data-label="Absent">{row.absent}</td>
                      <td data-label="Excused">{row.excused}</td>
                      <td data-label="Sessions">{row.sessions}</td>
                      <td data-label="Attendance" data-rate={row.attendance_rate ?? ''}>
                        {row.attendance_rate == null ? '—' : formatRate(row.attendance_rate)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <div className="actions">
            <button type="button" className="secondary" onClick={csv}>
              Download course report (CSV)
            </button>
          </div>
          {downloadError && (
            <p className="error" role="alert">
              {downloadError}
            </p>
          )}
        </>
      )}
    </section>
  );
}
