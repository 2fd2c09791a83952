import { formatTime } from '../format.js';
import Statistics from './Statistics.jsx';

/** The final statistics of the session that just ended (here or elsewhere). */
export default function EndedSummary({ summary, onDismiss }) {
  return (
    <section className="card ended-summary" aria-labelledby="ended-title" data-session-id={summary.sessionId}>
      <h3 id="ended-title">Session ended{summary.topic ? `: ${summary.topic}` : ''}</h3>
      <p>
        Ended at <time dateTime={summary.endedAt}>{formatTime(summary.endedAt)}</time>
        {summary.endedBy ? ` by ${summary.endedBy}` : ''}. Final statistics:
      </p>
      <Statistics statistics={summary.statistics} label="Final statistics" />
      <button type="button" className="secondary small" onClick={onDismiss}>
        Close summary
      </button>
    </section>
  );
}
