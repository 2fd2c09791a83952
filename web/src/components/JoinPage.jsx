import { useCallback, useEffect, useState } from 'react';
import { useApi, useSession } from '../session.js';
import { coursePath, linkHandler, navigate } from '../router.js';
import useCourseSessionTracking from '../hooks/useCourseSessionTracking.js';
import PageHeading from './PageHeading.jsx';
import StudentView from './StudentView.jsx';

/**
 * A join link (`/join/CODE`) or a typed code: ask to join the course, then wait for the teacher.
 *
 * The page's socket asks to follow the course at once. While the request is pending the server
 * refuses; when the teacher approves, the server moves this very socket into the course's room
 * (`enrollmentChanged`), so the course's live view appears here and its next session shows
 * without a reload or a reconnection.
 */
export default function JoinPage({ code, ioFactory }) {
  const { token } = useSession();
  const { request } = useApi();
  const [typed, setTyped] = useState(code);
  const [joined, setJoined] = useState(null);
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [course, setCourse] = useState(null);

  const join = useCallback(
    async (value) => {
      setBusy(true);
      setError(null);
      try {
        const answer = await request('/api/join', { method: 'POST', body: { code: value } });
        setJoined(answer);
        setStatus(answer.status);
      } catch (failure) {
        setError(failure.detail ?? String(failure));
      } finally {
        setBusy(false);
      }
    },
    [request],
  );

  useEffect(() => {
    if (code) join(code);
  }, [code, join]);

  const courseId = joined?.course_id ?? null;
  // `ioFactory`: tests give a fake socket; the app, socket.io-client's.
  const tracking = useCourseSessionTracking(courseId, token, { ioFactory });
  const { socket } = tracking;

  // The student's own enrollment, live: approved moves this socket into the course's room.
  useEffect(() => {
    if (!socket || !courseId) return undefined;
    const onChanged = (data) => {
      if (data?.course_id === courseId && typeof data.status === 'string') setStatus(data.status);
    };
    socket.on('enrollmentChanged', onChanged);
    return () => socket.off('enrollmentChanged', onChanged);
  }, [socket, courseId]);

  useEffect(() => {
    if (status !== 'approved' || !courseId) return undefined;
    let cancelled = false;
    request(`/api/courses/${encodeURIComponent(courseId)}`).then(
      (body) => {
        if (!cancelled) setCourse(body);
      },
      (failure) => {
        if (!cancelled) setError(failure.detail ?? String(failure));
      },
    );
    tracking.checkActiveSessions();
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [status, courseId, request]);

  const named = joined ? `${joined.course_code}: ${joined.course_title}` : null;
  const title = !named ? 'Join a course' : status === 'approved' ? named : `Join ${named}`;
  return (
    <section aria-labelledby="join-title" className="join-page">
      <PageHeading id="join-title" title={title} />
      {!joined && (
        <form
          className="card join-form"
          onSubmit={(event) => {
            event.preventDefault();
            const value = typed.trim();
            if (value) join(value);
          }}
        >
          <div className="field">
            <label htmlFor="join-code">Join code</label>
            <input
              id="join-code"
              value={typed}
              onChange={(event) => setTyped(event.target.value)}
              autoCapitalize="characters"
              autoComplete="off"
              spellCheck={false}
              placeholder="e.g. 7HKX3M2QPA"
              maxLength={64}
            />
          </div>
          <button type="submit" disabled={busy || !typed.trim()}>
            {busy ? 'Joining…' : 'Join'}
          </button>
        </form>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div aria-live="polite">
        {status === 'pending' && (
          <p className="card join-status" data-join-status="pending">
            Your request to join is waiting for the teacher&apos;s approval. This page changes by itself as
            soon as you are approved; you can leave it open.
          </p>
        )}
        {status === 'rejected' && (
          <p className="card join-status" data-join-status="rejected">
            The teacher declined your enrollment in this course. Ask them if you think this is a mistake.
          </p>
        )}
        {status === 'removed' && (
          <p className="card join-status" data-join-status="removed">
            You were taken off this course&apos;s roster.
          </p>
        )}
        {status === 'approved' && (
          <p className="card join-status" data-join-status="approved">
            You are enrolled.{' '}
            {courseId && (
              <a href={coursePath(courseId)} onClick={linkHandler(coursePath(courseId))}>
                Open the course page
              </a>
            )}
          </p>
        )}
      </div>
      {status === 'approved' && course && (
        // The subscription refused while pending is old news once approved.
        <StudentView
          course={course}
          tracking={tracking.lastError?.code === 'forbidden' ? { ...tracking, lastError: null } : tracking}
        />
      )}
      {!joined && (
        <p>
          <a
            href="/"
            onClick={(event) => {
              event.preventDefault();
              navigate('/');
            }}
          >
            Back to your courses
          </a>
        </p>
      )}
    </section>
  );
}
