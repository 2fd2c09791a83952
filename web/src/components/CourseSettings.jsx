import { useState } from 'react';
import { useApi } from '../session.js';

/** Edit a course's code and title; archive it (no new session, hidden from students) or bring it back. */
export default function CourseSettings({ course, onChanged }) {
  const { request } = useApi();
  const [code, setCode] = useState(course.code);
  const [title, setTitle] = useState(course.title);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const base = `/api/courses/${encodeURIComponent(course.id)}`;

  const run = async (work) => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      onChanged(await work());
      setSaved(true);
    } catch (failure) {
      setError(failure.detail ?? String(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card course-settings" aria-labelledby="settings-title">
      <h2 id="settings-title">Course settings</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          run(() => request(base, { method: 'PATCH', body: { code: code.trim(), title: title.trim() } }));
        }}
      >
        <div className="fields">
          <div className="field">
            <label htmlFor="course-code">Code</label>
            <input id="course-code" value={code} maxLength={64} required onChange={(event) => setCode(event.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="course-title-input">Title</label>
            <input
              id="course-title-input"
              value={title}
              maxLength={200}
              required
              onChange={(event) => setTitle(event.target.value)}
            />
          </div>
        </div>
        <button type="submit" disabled={busy}>
          Save
        </button>
      </form>
      <p className="hint">
        Archiving keeps the course&apos;s history and reports, takes no new session, and hides the course from its
        students and from your course list (until you unarchive it).
      </p>
      {course.archived_at ? (
        <button type="button" className="secondary" disabled={busy} onClick={() => run(() => request(`${base}/unarchive`, { method: 'POST' }))}>
          Unarchive
        </button>
      ) : (
        <button type="button" className="danger" disabled={busy} onClick={() => run(() => request(`${base}/archive`, { method: 'POST' }))}>
          Archive course
        </button>
      )}
      {saved && (
        <p className="success" role="status">
          Saved.
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
