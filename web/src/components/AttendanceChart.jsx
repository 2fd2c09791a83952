import { countOf, formatDateTime, statusLabel } from '../format.js';

const ROWS = [
  ['present', 'On time'],
  ['late', 'Late'],
  ['excused', 'Excused'],
  ['absent', 'Absent'],
];
const LABEL_WIDTH = 64;
const ROW_HEIGHT = 22;
const TOP = 8;

/**
 * One student's status in each session, oldest first: a column per session and
 * a mark in the row of its status (the row says it, not only the colour). Plain
 * inline SVG that scales to its container; the same data as a table on demand.
 */
export default function AttendanceChart({ sessions, titleId = 'attendance-chart-title' }) {
  if (!sessions.length) return <p className="empty">No ended sessions yet.</p>;
  const step = sessions.length > 40 ? 10 : sessions.length > 15 ? 16 : 28;
  const width = LABEL_WIDTH + sessions.length * step + 8;
  const height = TOP + ROWS.length * ROW_HEIGHT + 4;
  const rowOf = Object.fromEntries(ROWS.map(([status], index) => [status, index]));
  const counts = Object.fromEntries(ROWS.map(([status]) => [status, 0]));
  for (const session of sessions) counts[session.status] = (counts[session.status] ?? 0) + 1;
  const description = `${countOf(sessions.length, 'session')}: ${ROWS.map(([status, label]) => `${counts[status]} ${label.toLowerCase()}`).join(', ')}.`;
  const descId = `${titleId}-desc`;
  return (
    <figure className="attendance-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width="100%"
        style={{ maxWidth: `${width * 1.5}px` }}
        role="img"
        aria-labelledby={`${titleId} ${descId}`}
      >
        <title id={titleId}>Attendance per session, oldest first</title>
        <desc id={descId}>{description}</desc>
        {ROWS.map(([status, label], index) => {
          const y = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2;
          return (
            <g key={status} className={`chart-row chart-row-${status}`}>
              <text x={LABEL_WIDTH - 6} y={y} textAnchor="end" dominantBaseline="middle" className="chart-label">
                {label}
              </text>
              <line x1={LABEL_WIDTH} x2={width - 4} y1={y} y2={y} className="chart-grid" />
            </g>
          );
        })}
        {sessions.map((session, index) => {
          const x = LABEL_WIDTH + index * step + step / 2;
          const y = TOP + (rowOf[session.status] ?? 0) * ROW_HEIGHT + ROW_HEIGHT / 2;
          return (
            <circle
              key={session.session_id}
              cx={x}
              cy={y}
              r={Math.min(7, step / 2 - 1)}
              className={`chart-mark chart-${session.status}`}
              data-status={session.status}
            >
              <title>{`${formatDateTime(session.started_at)}${session.topic ? ` — ${session.topic}` : ''}: ${statusLabel(session.status)}`}</title>
            </circle>
          );
        })}
      </svg>
      <figcaption className="hint">{description}</figcaption>
      <details>
        <summary>Show as a table</summary>
        <div className="table-wrap">
          <table className="plain-table">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((session) => (
                <tr key={session.session_id}>
                  <td>
                    <time dateTime={session.started_at}>{formatDateTime(session.started_at)}</time>
                    {session.topic ? ` — ${session.topic}` : ''}
                  </td>
                  <td>{statusLabel(session.status)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
