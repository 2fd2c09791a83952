import { useCallback, useEffect, useMemo, useState } from 'react';
import { useApi, useSession } from '../session.js';
import { coursePath, linkHandler } from '../router.js';
import { formatTime } from '../format.js';
import useFetched from '../hooks/useFetched.js';
import useCourseSessionTracking from '../hooks/useCourseSessionTracking.js';
import PageHeading from './PageHeading.jsx';
import CoTeachersPanel from './CoTeachersPanel.jsx';
import CourseSettings from './CourseSettings.jsx';
import JoinCodePanel from './JoinCodePanel.jsx';
import LmsPanel from './LmsPanel.jsx';
import RosterImport from './RosterImport.jsx';
import './roster.css';

const STATUSES = ['approved', 'pending', 'rejected'];
const PAGE_ROWS = 50;
const STATUS_LABELS = { approved: 'Approved', pending: 'Pending', rejected: 'Rejected' };

function enc(id) {
  return encodeURIComponent(id);
}

/**
 * A course's roster, run by its teacher: settings and archive, the join link (with a QR code
 * for the projector), join requests as they arrive (live, `enrollmentRequested`), every
 * enrollment with search, a status filter, counts and bulk actions, the CSV import with its
 * preview, the CSV export, and the course's co-teachers and TAs.
 */
export default function RosterPage({ courseId }) {
  const { token } = useSession();
  const { request, download } = useApi();
  const [refresh, setRefresh] = useState(0);
  const reload = useCallback(() => setRefresh((n) => n + 1), []);
  const { data: course, error: courseError, setData: setCourse } = useFetched(`/api/courses/${enc(courseId)}`);
  const { data: roster, error: rosterError } = useFetched(`/api/courses/${enc(courseId)}/enrollments`, {
    refreshKey: refresh,
  });
  const { data: invitations } = useFetched(`/api/courses/${enc(courseId)}/invitations`, { refreshKey: refresh });
  const manages = course && (course.my_role === 'teacher' || course.my_role === 'admin');
  // The course's socket: a manager's subscription also brings the course's join requests.
  const tracking = useCourseSessionTracking(manages ? course.id : null, token);
  const [news, setNews] = useState(null);
  const [query, setQuery] = useState('');
  const [filter, setFilter] = useState('all');
  const [selected, setSelected] = useState(() => new Set());
  const [message, setMessage] = useState(null);
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [limit, setLimit] = useState(PAGE_ROWS);
  useEffect(() => setLimit(PAGE_ROWS), [query, filter]);

  useEffect(() => {
    const { socket } = tracking;
    if (!socket) return undefined;
    const onRequested = (data) => {
      if (data?.course_id !== courseId) return;
      setNews(`${data.name || data.user_id} asked to join (${data.status === 'approved' ? 'approved at once' : 'waiting for you'})`);
      reload();
    };
    socket.on('enrollmentRequested', onRequested);
    return () => socket.off('enrollmentRequested', onRequested);
  }, [tracking.socket, courseId, reload]); // eslint-disable-line react-hooks/exhaustive-deps

  const enrollments = useMemo(() => (Array.isArray(roster) ? roster : []), [roster]);
  const counts = useMemo(() => {
    const result = { all: enrollments.length, approved: 0, pending: 0, rejected: 0 };
    for (const e of enrollments) result[e.status] = (result[e.status] ?? 0) + 1;
    return result;
  }, [enrollments]);
  const shown = useMemo(() => {
    const needle = query.trim().toLowerCase();
    return enrollments.filter(
      (e) =>
        (filter === 'all' || e.status === filter) &&
        (!needle ||
          e.name.toLowerCase().includes(needle) ||
          e.user_id.toLowerCase().includes(needle) ||
          (e.email ?? '').toLowerCase().includes(needle)),
    );
  }, [enrollments, query, filter]);
  const pending = enrollments.filter((e) => e.status === 'pending');

  // Selection holds only rows still on the roster.
  useEffect(() => {
    setSelected((current) => {
      const ids = new Set(enrollments.map((e) => e.user_id));
      const kept = [...current].filter((id) => ids.has(id));
      return kept.length === current.size ? current : new Set(kept);
    });
  }, [enrollments]);

  const apply = useCallback(
    async (userIds, status) => {
      if (userIds.length === 0) return;
      if (
        status === 'removed' &&
        !window.confirm(
          `Remove ${userIds.length === 1 ? 'this student' : `${userIds.length} students`} from the roster? ` +
            'Their past attendance records stay in the reports.',
        )
      ) {
        return;
      }
      setBusy(true);
      setFailure(null);
      try {
        const answer = await request(`/api/courses/${enc(courseId)}/enrollments`, {
          method: 'PUT',
          body: { enrollments: userIds.map((user_id) => ({ user_id, status })) },
        });
        const verb = { approved: 'Approved', rejected: 'Rejected', removed: 'Removed', pending: 'Set pending' }[status];
        setMessage(`${verb}: ${answer.changed} student${answer.changed === 1 ? '' : 's'}.`);
        setSelected(new Set());
        setNews(null);
        reload();
      } catch (error) {
        setFailure(error.detail ?? String(error));
      } finally {
        setBusy(false);
      }
    },
    [request, courseId, reload],
  );

  if (courseError) {
    return (
      <section aria-labelledby="roster-title">
        <PageHeading id="roster-title" title="Roster unavailable" />
        <p className="error" role="alert">
          {courseError.status === 404 ? 'There is no such course, or you do not manage it.' : courseError.detail}
        </p>
      </section>
    );
  }
  if (!course) return <p role="status">Loading roster…</p>;
  if (!manages) {
    return (
      <section aria-labelledby="roster-title">
        <PageHeading id="roster-title" title="Roster" />
        <p className="error" role="alert">Only the course&apos;s teacher or an admin can manage its roster.</p>
      </section>
    );
  }

  const visible = shown.slice(0, limit);
  const allShownSelected = shown.length > 0 && shown.every((e) => selected.has(e.user_id));
  const toggleAll = () =>
    setSelected((current) => {
      const next = new Set(current);
      for (const e of shown) {
        if (allShownSelected) next.delete(e.user_id);
        else next.add(e.user_id);
      }
      return next;
    });
  const toggle = (id) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const chosen = [...selected];

  return (
    <section aria-labelledby="roster-title" className="roster-page">
      <p className="breadcrumb">
        <a href={coursePath(course.id)} onClick={linkHandler(coursePath(course.id))}>
          ← {course.code}: {course.title}
        </a>
      </p>
      <PageHeading id="roster-title" title={`Roster: ${course.code}`} />
      {course.archived_at && (
        <p className="notice" role="status">
          This course is archived: it takes no new session and its students do not see it. Its history and
          reports are kept.
        </p>
      )}

      <div className="roster-grid">
        <JoinCodePanel course={course} />
        <LmsPanel courseId={course.id} onSynced={reload} />
        <CoTeachersPanel course={course} />
        <section className="card" aria-labelledby="requests-title">
          <h2 id="requests-title">Join requests ({pending.length})</h2>
          <p className="live-news" aria-live="polite" data-testid="roster-news">
            {news}
          </p>
          {pending.length === 0 ? (
            <p className="empty">No request waiting. New ones appear here as students join.</p>
          ) : (
            <>
              <ul className="requests">
                {pending.map((e) => (
                  <li key={e.user_id} data-user-id={e.user_id}>
                    <span>
                      <strong>{e.name}</strong> <span className="hint">{e.email ?? e.user_id}</span>
                    </span>
                    <span className="row-actions">
                      <button type="button" disabled={busy} onClick={() => apply([e.user_id], 'approved')}>
                        Approve
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        disabled={busy}
                        onClick={() => apply([e.user_id], 'rejected')}
                      >
                        Reject
                      </button>
                    </span>
                  </li>
                ))}
              </ul>
              <div className="actions">
                <button type="button" disabled={busy} onClick={() => apply(pending.map((e) => e.user_id), 'approved')}>
                  Approve all {pending.length}
                </button>
                <button
                  type="button"
                  className="secondary"
                  disabled={busy}
                  onClick={() => apply(pending.map((e) => e.user_id), 'rejected')}
                >
                  Reject all
                </button>
              </div>
            </>
          )}
        </section>
      </div>

      <section className="card" aria-labelledby="enrolled-title">
        <h2 id="enrolled-title">Students</h2>
        <p className="counts" data-testid="roster-counts">
          {counts.all} on the roster · {counts.approved} approved · {counts.pending} pending · {counts.rejected} rejected
        </p>
        <div className="roster-filters">
          <div className="field">
            <label htmlFor="roster-search">Search</label>
            <input
              id="roster-search"
              type="search"
              value={query}
              placeholder="Name, user id or email"
              onChange={(event) => setQuery(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="roster-filter">Status</label>
            <select id="roster-filter" value={filter} onChange={(event) => setFilter(event.target.value)}>
              <option value="all">All ({counts.all})</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {STATUS_LABELS[s]} ({counts[s]})
                </option>
              ))}
            </select>
          </div>
        </div>
        <div className="bulk-bar" role="group" aria-label="Selected students">
          <span>{chosen.length} selected</span>
          <button type="button" disabled={busy || !chosen.length} onClick={() => apply(chosen, 'approved')}>
            Approve
          </button>
          <button type="button" className="secondary" disabled={busy || !chosen.length} onClick={() => apply(chosen, 'rejected')}>
            Reject
          </button>
          <button type="button" className="danger" disabled={busy || !chosen.length} onClick={() => apply(chosen, 'removed')}>
            Remove
          </button>
        </div>
        <p className="hint">
          Removing a student takes them off the roster; their past attendance records stay in the reports.
        </p>
        {message && (
          <p className="success" role="status">
            {message}
          </p>
        )}
        {failure && (
          <p className="error" role="alert">
            {failure}
          </p>
        )}
        {rosterError && (
          <p className="error" role="alert">
            Could not load the roster: {rosterError.detail}
          </p>
        )}
        {!roster && !rosterError && <p role="status">Loading…</p>}
        {roster && (
          <div className="table-wrap">
            <table className="roster-table">
              <caption className="visually-hidden">
                Students of {course.code}, {shown.length} shown of {counts.all}
              </caption>
              <thead>
                <tr>
                  <th scope="col">
                    <input
                      type="checkbox"
                      aria-label={`Select all ${shown.length} students that match`}
                      checked={allShownSelected}
                      onChange={toggleAll}
                    />
                  </th>
                  <th scope="col">Name</th>
                  <th scope="col">User id</th>
                  <th scope="col">Email</th>
                  <th scope="col">Status</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {visible.map((e) => (
                  <tr key={e.user_id} data-user-id={e.user_id} data-status={e.status}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Select ${e.name}`}
                        checked={selected.has(e.user_id)}
                        onChange={() => toggle(e.user_id)}
                      />
                    </td>
                    <td className="name">{e.name}</td>
                    <td className="mono">{e.user_id}</td>
                    <td>{e.email ?? '—'}</td>
                    <td>
                      <span className={`badge badge-enrollment-${e.status}`}>{STATUS_LABELS[e.status] ?? e.status}</span>
                    </td>
                    <td className="row-actions">
                      {e.status !== 'approved' && (
                        <button type="button" disabled={busy} onClick={() => apply([e.user_id], 'approved')}>
                          Approve
                        </button>
                      )}
                      {e.status !== 'rejected' && (
                        <button type="button" className="secondary" disabled={busy} onClick={() => apply([e.user_id], 'rejected')}>
                          Reject
                        </button>
                      )}
                      <button
                        type="button"
                        className="danger"
                        disabled={busy}
                        aria-label={`Remove ${e.name}`}
                        onClick={() => apply([e.user_id], 'removed')}
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {shown.length === 0 && <p className="empty">No student matches.</p>}
            {shown.length > visible.length && (
              <p className="actions">
                <span className="hint">
                  Showing {visible.length} of {shown.length}.
                </span>
                <button type="button" className="secondary" onClick={() => setLimit((n) => n + PAGE_ROWS * 4)}>
                  Show more
                </button>
              </p>
            )}
          </div>
        )}
        {Array.isArray(invitations) && invitations.length > 0 && (
          <details className="invitations">
            <summary>Invited by email, not signed in yet ({invitations.length})</summary>
            <p className="hint">
              Each is enrolled when someone first signs in with that email (unless two accounts share it).
            </p>
            <ul>
              {invitations.map((i) => (
                <li key={i.email}>
                  {i.name ? `${i.name} · ` : ''}
                  {i.email} · {STATUS_LABELS[i.status]} · {formatTime(i.updated_at)}
                </li>
              ))}
            </ul>
          </details>
        )}
        <div className="actions">
          <button
            type="button"
            className="secondary"
            onClick={() =>
              download(`/api/courses/${enc(courseId)}/enrollments.csv`, `roster-${courseId}.csv`).catch((error) =>
                setFailure(error.detail ?? String(error)),
              )
            }
          >
            Download roster (CSV)
          </button>
        </div>
      </section>

      <RosterImport courseId={course.id} onImported={reload} />
      <CourseSettings course={course} onChanged={setCourse} />
    </section>
  );
}
