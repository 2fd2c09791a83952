import TermCalendar from './TermCalendar.jsx';
import AbsenceAlerts from './AbsenceAlerts.jsx';
import './term.css';

/** The term around the sessions (issue 21): the calendar for everyone, alerts for the course's managers. */
export default function TermPanel({ course, manages, tracking }) {
  // A start or an end anywhere (a planned session starting by itself included) refreshes the calendar.
  const liveKey = `${tracking.activeSessions.map((s) => s.sessionId).join(',')}|${tracking.lastNotification?.receivedAt ?? ''}`;
  return (
    <div className="term-panel">
      {manages && <AbsenceAlerts courseId={course.id} socket={tracking.socket} />}
      <TermCalendar courseId={course.id} manages={manages} liveKey={liveKey} />
    </div>
  );
}
