import { useEffect, useState } from 'react';
import { useSession } from '../session.js';
import { coursePath, linkHandler } from '../router.js';
import useFetched from '../hooks/useFetched.js';
import useQrCode from '../hooks/useQrCode.js';
import useCourseSessionTracking from '../hooks/useCourseSessionTracking.js';
import useSessionRoster from '../hooks/useSessionRoster.js';

/** Seconds left until `iso`, ticking; null without a time. */
function useSecondsUntil(iso) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!iso) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [iso]);
  if (!iso) return null;
  return Math.max(0, Math.ceil((new Date(iso).getTime() - now) / 1000));
}

/** A code's characters spaced for reading from the back row. */
function spaced(code) {
  return code ? `${code.slice(0, 3)} ${code.slice(3)}` : '';
}

/**
 * The full-screen projector view of a session in code mode: the QR code of the
 * check-in link and the code itself, both rotating live as `checkInCode`
 * arrives, a countdown to the next code, and the live count of students here
 * (on time or late). It fits one screen from 1280×720 up.
 */
export default function ProjectorView({ sessionId, ioFactory }) {
  const { token } = useSession();
  const { data: session, error } = useFetched(`/api/sessions/${encodeURIComponent(sessionId)}`);
  // `ioFactory`: tests give a fake socket; the app, socket.io-client's.
  const tracking = useCourseSessionTracking(session ? session.course_id : null, token, { ioFactory });
  const { roster, error: rosterError, checkInCode } = useSessionRoster(tracking.socket, session ? sessionId : null);
  const link = checkInCode ? new URL(checkInCode.check_in_url, window.location.origin).href : null;
  const qr = useQrCode(link);
  const secondsLeft = useSecondsUntil(checkInCode?.expires_at);
  const ended = roster?.status === 'ended' || session?.status === 'ended'
    || (tracking.lastNotification?.type === 'ended' && tracking.lastNotification.sessionId === sessionId);

  useEffect(() => {
    document.body.classList.add('projecting');
    return () => document.body.classList.remove('projecting');
  }, []);

  if (error) {
    return (
      <section className="projector" aria-labelledby="projector-title">
        <h1 id="projector-title">Projector view unavailable</h1>
        <p className="error" role="alert">{error.status === 404 ? 'There is no such session.' : error.detail}</p>
        <p><a href="/" onClick={linkHandler('/')}>Go to your courses</a></p>
      </section>
    );
  }
  if (!session) return <p role="status">Loading the session…</p>;

  const back = coursePath(session.course_id);
  const stats = roster?.statistics;
  const topic = session.topic || 'Attendance';
  const heading = ended
    ? `${topic}: session ended`
    : session.check_in_mode === 'code'
      ? `${topic}: check in now`
      : `${topic}: check in on the course page`;
  return (
    <section className="projector" aria-labelledby="projector-title" data-session-id={sessionId}>
      <header className="projector-bar">
        <h1 id="projector-title">{heading}</h1>
        <div className="projector-actions">
          <button type="button" className="secondary small" onClick={() => document.documentElement.requestFullscreen?.()}>
            Full screen
          </button>
          <a href={back} onClick={linkHandler(back)}>Leave projector view</a>
        </div>
      </header>
      {ended ? (
        <p className="projector-ended" role="status">This session has ended: check-in is closed.</p>
      ) : session.check_in_mode !== 'code' ? (
        <p className="projector-ended" role="status">
          This session is in open mode: students check in from the course page, without a code.
        </p>
      ) : (
        <div className="projector-body">
          <figure className="projector-qr">
            {qr ? (
              <img src={qr} alt={`QR code of the check-in link for code ${checkInCode.code}`} data-url={link} />
            ) : (
              <div className="qr-placeholder" role="status">{rosterError ?? 'Waiting for the code…'}</div>
            )}
            <figcaption>Scan to check in</figcaption>
          </figure>
          <div className="projector-code">
            <p className="projector-label">or type this code on the course page</p>
            <p className="code" aria-live="polite" aria-atomic="true" data-code={checkInCode?.code ?? ''}>
              {spaced(checkInCode?.code) || '······'}
            </p>
            <p className="countdown" aria-live="off">
              {secondsLeft == null ? '' : `new code in ${secondsLeft} s`}
            </p>
          </div>
        </div>
      )}
      {/* `present` counts on time and late alike (a teacher's "late" too): the label says so. */}
      <p className="projector-count" aria-live="polite" data-present={stats?.present ?? 0}>
        <strong>{stats?.present ?? 0}</strong> of {stats?.total ?? '…'} {ended ? 'attended' : 'here'} (on time or late)
      </p>
    </section>
  );
}
