import TermCalendar from './TermCalendar.jsx';
import AbsenceAlerts from './AbsenceAlerts.jsx';
import './term.css';

/**
 * The term around the sessions (issue 21): the calendar for everyone; the absence alerts (and their
 * thresholds) for the course's managers, a student's own as notices.
 */
export default function TermPanel({ course, manages, tracking }) {
  // A start or an end anywhere (a planned session starting by itself included) refreshes the calendar.
  const liveKey = `${tracking.activeSessions.map((s) => s.sessionId).join(',')}|${tracking.lastNotification?.receivedAt ?? ''}`;
  return (
    <div className="term-panel">
      <AbsenceAlerts courseId={course.id} socket={tracking.socket} manages={manages} />
      <TermCalendar courseId={course.id} manages={manages} liveKey={liveKey} />
    </div>
  );
}
