import { useCallback, useState } from 'react';
import { useApi } from '../session.js';
import useFetched from '../hooks/useFetched.js';

const ROLE_LABELS = { owner: 'Teacher (owner)', teacher: 'Co-teacher', ta: 'Teaching assistant' };

/**
 * A course's teachers: its owner, co-teachers and teaching assistants (`/managers`). Every
 * teacher of the course sees the list; the owner (and admins) add people by user id, change
 * their role and remove them. A co-teacher may do everything the owner may, except this.
 */
export default function CoTeachersPanel({ course }) {
  const { request } = useApi();
  const path = `/api/courses/${encodeURIComponent(course.id)}/managers`;
  const [refresh, setRefresh] = useState(0);
  const { data } = useFetched(path, { refreshKey: refresh });
  const [userId, setUserId] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('teacher');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [message, setMessage] = useState(null);
  const owns = course.manager_role === 'owner' || course.my_role === 'admin';
  const managers = Array.isArray(data) ? data : [];

  const change = useCallback(
    async (id, init, done) => {
      setBusy(true);
      setError(null);
      setMessage(null);
      try {
        await request(`${path}/${encodeURIComponent(id)}`, init);
        setMessage(done);
        setRefresh((n) => n + 1);
        return true;
      } catch (failure) {
        setError(failure.detail ?? String(failure));
        return false;
      } finally {
        setBusy(false);
      }
    },
    [path, request],
  );

  const add = async (event) => {
    event.preventDefault();
    const id = userId.trim();
    if (!id) return;
    const body = { role, ...(name.trim() ? { name: name.trim() } : {}) };
    if (await change(id, { method: 'PUT', body }, `${name.trim() || id} is a ${ROLE_LABELS[role].toLowerCase()} now.`)) {
      setUserId('');
      setName('');
    }
  };

  const remove = (manager) => {
    if (!window.confirm(`Remove ${manager.name} from the teachers of ${course.code}? They lose access at once.`)) return;
    change(manager.user_id, { method: 'DELETE' }, `${manager.name} no longer teaches ${course.code}.`);
  };

  return (
    <section className="card" aria-labelledby="co-teachers-title">
      <h2 id="co-teachers-title">Co-teachers</h2>
      <ul className="co-teachers" data-testid="co-teachers">
        {managers.map((m) => (
          <li key={m.user_id}>
            <span>
              {m.name} <small>({m.user_id})</small> · {ROLE_LABELS[m.role] ?? m.role}
            </span>
            {owns && m.role !== 'owner' && (
              <span className="actions">
                <button
                  type="button"
                  disabled={busy}
                  onClick={() =>
                    change(
                      m.user_id,
                      { method: 'PUT', body: { role: m.role === 'ta' ? 'teacher' : 'ta' } },
                      `${m.name} is a ${m.role === 'ta' ? 'co-teacher' : 'teaching assistant'} now.`,
                    )
                  }
                >
                  {m.role === 'ta' ? 'Make co-teacher' : 'Make TA'}
                </button>
                <button type="button" disabled={busy} onClick={() => remove(m)} aria-label={`Remove ${m.name}`}>
                  Remove
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {owns && (
        <form onSubmit={add} className="inline-form">
          <label>
            User id
            <input value={userId} onChange={(e) => setUserId(e.target.value)} required maxLength={128} />
          </label>
          <label>
            Name (optional)
            <input value={name} onChange={(e) => setName(e.target.value)} maxLength={200} />
          </label>
          <label>
            Role
            <select value={role} onChange={(e) => setRole(e.target.value)}>
              <option value="teacher">Co-teacher</option>
              <option value="ta">Teaching assistant</option>
            </select>
          </label>
          <button type="submit" disabled={busy || !userId.trim()}>
            Add
          </button>
        </form>
      )}
      {message && (
        <p role="status" aria-live="polite">
          {message}
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
