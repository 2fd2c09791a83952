import { useSession } from '../session.js';
import { countOf, formatRate } from '../format.js';
import useFetched from '../hooks/useFetched.js';
import AttendanceChart from './AttendanceChart.jsx';

/** A student's own record over the course: the totals and a mark per ended session. */
export default function MyAttendance({ courseId, refreshKey }) {
  const { me } = useSession();
  const base = `/api/courses/${encodeURIComponent(courseId)}/report`;
  const { data: report, error } = useFetched(base, { refreshKey });
  const { data: history, error: historyError } = useFetched(`${base}/students/${encodeURIComponent(me.id)}`, {
    refreshKey,
  });
  const row = report?.students?.find((s) => s.user_id === me.id);
  const failure = [error, historyError].find((e) => e && e.status !== 401);

  return (
    <section className="card my-attendance" aria-labelledby="my-attendance-title">
      <h2 id="my-attendance-title">Your attendance in this course</h2>
      {failure && (
        <p className="error" role="alert">
          Could not load your attendance: {failure.detail}
        </p>
      )}
      {!failure && (!report || !history) && <p role="status">Loading your attendance…</p>}
      {row && (
        <p className="my-rate" data-rate={row.attendance_rate ?? ''}>
          {row.attendance_rate == null ? (
            'No attendance rate yet.'
          ) : (
            <>
              Attendance <strong>{formatRate(row.attendance_rate)}</strong>:
            </>
          )}{' '}
          on time {row.present}, late {row.late}, absent {row.absent}, excused {row.excused}, of{' '}
          {countOf(row.sessions, 'session')}.
        </p>
      )}
      {history && <AttendanceChart sessions={history.sessions} />}
    </section>
  );
}
