import { formatRate } from '../format.js';

/** Counts of one session. `present` counts present and late, as the server does. */
export default function Statistics({ statistics, label }) {
  if (!statistics) return null;
  const items = [
    ['Present', statistics.present],
    ['Late', statistics.late],
    ['Absent', statistics.absent],
    ['Excused', statistics.excused],
    ['Total', statistics.total],
  ].filter(([, value]) => typeof value === 'number');
  return (
    <dl className="statistics" aria-label={label}>
      {items.map(([name, value]) => (
        <div key={name} data-stat={name.toLowerCase()}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
      {typeof statistics.attendance_rate === 'number' && (
        <div data-stat="rate">
          <dt>Attendance</dt>
          <dd>{formatRate(statistics.attendance_rate)}</dd>
        </div>
      )}
    </dl>
  );
}
