import { useCallback, useState } from 'react';
import { useApi } from '../session.js';
import { formatTime } from '../format.js';
import useFetched from '../hooks/useFetched.js';

function syncText(sync) {
  const students = `${sync.members} in the LMS: ${sync.added} added, ${sync.removed} removed, ${sync.changed - sync.removed} changed`;
  const added = sync.managers_added ?? 0;
  const removed = sync.managers_removed ?? 0;
  if (!added && !removed) return students;
  return `${students}; co-teachers: ${added} added or changed, ${removed} removed`;
}

/**
 * A course launched from an LMS (LTI): when its roster was last read from the LMS and what it
 * changed, a "Sync from LMS" button, and whether grades reach the LMS's gradebook (failures
 * visible with the LMS's answer). Renders nothing for a course that did not come from an LMS.
 */
export default function LmsPanel({ courseId, onSynced }) {
  const { request } = useApi();
  const path = `/api/courses/${encodeURIComponent(courseId)}/lti`;
  const [refresh, setRefresh] = useState(0);
  const { data: lms } = useFetched(path, { refreshKey: refresh });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const sync = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      await request(`${path}/sync`, { method: 'POST' });
      setRefresh((n) => n + 1);
      onSynced?.();
    } catch (failure) {
      setError(failure.detail ?? String(failure));
    } finally {
      setBusy(false);
    }
  }, [path, request, onSynced]);
  if (!lms?.linked) return null;
  const grades = lms.grade_posts;
  return (
    <section className="card" aria-labelledby="lms-title">
      <h2 id="lms-title">From the LMS</h2>
      <p data-testid="lms-last-sync">
        {lms.last_sync
          ? `Roster read ${formatTime(lms.last_sync.at)}: ${syncText(lms.last_sync)}.`
          : 'The roster has not been read from the LMS yet.'}
      </p>
      {lms.roster_sync && (
        <button type="button" onClick={sync} disabled={busy}>
          {busy ? 'Syncing…' : 'Sync from LMS'}
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {lms.grades && grades && (
        <p data-testid="lms-grades">
          Grades to the LMS: {grades.done} sent
          {grades.pending > 0 && `, ${grades.pending} waiting to be retried`}
          {grades.failed > 0 && `, ${grades.failed} failed`}
          {grades.last_error && (grades.pending > 0 || grades.failed > 0) && ` (the LMS said: ${grades.last_error})`}.
        </p>
      )}
    </section>
  );
}
