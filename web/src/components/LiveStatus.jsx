import { formatTime } from '../format.js';

/**
 * The seed's connection indicator: `status connected` / `status disconnected`. While the client
 * is reconnecting by itself (`reconnecting`), a calm "Reconnecting…": a short blip is recovered
 * without the user doing anything, missed events included.
 */
export function ConnectionStatus({ isConnected, connectionError, reconnecting = false }) {
  const state = isConnected ? 'connected' : reconnecting ? 'disconnected reconnecting' : 'disconnected';
  return (
    <div className={`status ${state}`} role="status">
      <span className="dot" aria-hidden="true" />
      {isConnected ? 'Connected' : reconnecting ? 'Reconnecting…' : 'Disconnected'}
      {!isConnected && !reconnecting && connectionError ? <span className="hint"> — {connectionError}</span> : null}
    </div>
  );
}

function describe(notification) {
  const { type, data } = notification;
  const topic = data.topic ? ` “${data.topic}”` : '';
  if (type === 'started') {
    return `Attendance session${topic} started by ${data.started_by || data.teacher_name} at ${formatTime(data.started_at)}.`;
  }
  const stats = data.final_statistics;
  const tally =
    stats && typeof stats.total === 'number' ? ` Attended: ${stats.present} of ${stats.total} (late included).` : '';
  return `Attendance session${topic} ended by ${data.ended_by || data.teacher_name} at ${formatTime(data.ended_at)}.${tally}`;
}

/**
 * The last session started/ended notification. The live region is always in the
 * page so that screen readers announce what appears in it.
 */
export function SessionNotification({ notification, onDismiss }) {
  return (
    <div className="notification-region" role="status" aria-live="polite">
      {notification && (
        <div className={`notification notification-${notification.type}`} data-session-id={notification.sessionId}>
          <p>{describe(notification)}</p>
          <button type="button" className="secondary small" onClick={onDismiss} aria-label="Dismiss notification">
            Dismiss
          </button>
        </div>
      )}
    </div>
  );
}

export function SocketError({ error }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      Live updates: {error.message}
    </p>
  );
}
