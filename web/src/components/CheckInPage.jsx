import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../session.js';
import { coursePath, linkHandler } from '../router.js';
import { formatTime, statusLabel } from '../format.js';
import { checkInPath } from '../checkin.js';
import useFetched from '../hooks/useFetched.js';
import PageHeading from './PageHeading.jsx';
import CheckInForm from './CheckInForm.jsx';

const CHECKED_IN = new Set(['present', 'late']);

function codeFromAddress() {
  return new URLSearchParams(window.location.search).get('code') ?? '';
}

/**
 * The page a QR code (or a shared link) opens: `/check-in/<session>?code=…`.
 * A signed-out student signs in first and comes back here (the path stays).
 * A code from the link is sent at once, then dropped from the address bar, so
 * a reload or a bookmark never resends a stale code.
 */
export default function CheckInPage({ sessionId }) {
  const { me } = useSession();
  const [initialCode] = useState(codeFromAddress);
  const [record, setRecord] = useState(null);
  const { data: session, error } = useFetched(`/api/sessions/${encodeURIComponent(sessionId)}`);

  useEffect(() => {
    if (initialCode) window.history.replaceState(null, '', checkInPath(sessionId));
  }, [initialCode, sessionId]);

  const own = record ?? (session ? (session.records ?? []).find((r) => r.user_id === me.id) ?? null : null);
  const checkedIn = own && CHECKED_IN.has(own.status);
  const onCheckedIn = useCallback((updated) => setRecord(updated), []);

  if (error) {
    return (
      <section aria-labelledby="check-in-title">
        <PageHeading id="check-in-title" title="Check in" />
        <p className="error" role="alert">
          {error.status === 404
            ? 'This session was not found, or you are not an approved student of its course. Check that you are signed in as yourself.'
            : error.detail}
        </p>
        <p><a href="/" onClick={linkHandler('/')}>Go to your courses</a></p>
      </section>
    );
  }
  if (!session) return <p role="status">Loading the session…</p>;

  const active = session.status === 'active';
  return (
    <section aria-labelledby="check-in-title" className="check-in-page">
      <PageHeading id="check-in-title" title={`Check in: ${session.topic || 'Attendance session'}`} />
      <p className="hint">
        Started <time dateTime={session.started_at}>{formatTime(session.started_at)}</time> by {session.started_by}
      </p>
      <p className="my-status" aria-live="polite">
        Your status:{' '}
        <strong className={`badge badge-${own?.status ?? 'none'}`} data-status={own?.status ?? 'none'}>
          {own ? statusLabel(own.status) : 'Not checked in'}
        </strong>
      </p>
      {checkedIn ? (
        <p className="success" role="status">You are checked in. You can close this page.</p>
      ) : active ? (
        <CheckInForm
          sessionId={sessionId}
          codeMode={session.check_in_mode === 'code'}
          initialCode={initialCode}
          submitInitial={Boolean(initialCode)}
          onCheckedIn={onCheckedIn}
        />
      ) : (
        <p className="error" role="alert">This session has ended: check-in is closed. Ask your teacher if you were there.</p>
      )}
      <p>
        <a href={coursePath(session.course_id)} onClick={linkHandler(coursePath(session.course_id))}>
          Go to the course
        </a>
      </p>
    </section>
  );
}
