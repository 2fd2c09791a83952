import { useState } from 'react';
import { useApi } from '../session.js';
import { navigate, rosterPath } from '../router.js';
import './roster.css';

/** A teacher's (or admin's) new course: code and title; then straight to its roster page. */
export default function NewCourseForm() {
  const { request } = useApi();
  const [code, setCode] = useState('');
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const course = await request('/api/courses', { method: 'POST', body: { code: code.trim(), title: title.trim() } });
      navigate(rosterPath(course.id));
    } catch (failure) {
      setError(failure.detail ?? String(failure));
      setBusy(false);
    }
  };

  return (
    <details className="card new-course">
      <summary>New course</summary>
      <form onSubmit={submit}>
        <div className="fields">
          <div className="field">
            <label htmlFor="new-course-code">Code</label>
            <input id="new-course-code" value={code} maxLength={64} required placeholder="CS101" onChange={(e) => setCode(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="new-course-title">Title</label>
            <input
              id="new-course-title"
              value={title}
              maxLength={200}
              required
              placeholder="Introduction to Computing"
              onChange={(e) => setTitle(e.target.value)}
            />
          </div>
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create course'}
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </details>
  );
}
