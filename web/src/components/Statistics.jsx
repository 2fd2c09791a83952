import { formatRate } from '../format.js';

/**
 * Counts of one session, as tiles that add up: on time + late + absent + excused
 * = total. The server's `present` counts late arrivals too; here that number is
 * "attended", shown apart with the rate, so that no tile is counted twice.
 */
export default function Statistics({ statistics, label }) {
  if (!statistics) return null;
  const { present, late, absent, excused, total } = statistics;
  const parts = [
    ['on-time', 'On time', present - late],
    ['late', 'Late', late],
    ['absent', 'Absent', absent],
    ['excused', 'Excused', excused],
  ];
  return (
    <div className="statistics-block">
      <dl className="statistics" aria-label={label}>
        {parts.map(([key, name, value]) => (
          <div key={key} data-stat={key}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
        <div data-stat="total" className="stat-total">
          <dt>Total</dt>
          <dd>{total}</dd>
        </div>
      </dl>
      <p className="hint" data-stat="attended">
        Attended (on time or late): <strong>{present}</strong> of {total}
        {typeof statistics.attendance_rate === 'number' ? ` · ${formatRate(statistics.attendance_rate)}` : ''}
      </p>
    </div>
  );
}
