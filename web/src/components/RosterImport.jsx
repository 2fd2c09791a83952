import { useCallback, useState } from 'react';
import { useSession } from '../session.js';
import { ApiError } from '../api.js';

/** POST the CSV as `text/csv`; the answer (200 or 422) has the same shape either way. */
async function sendCsv(courseId, token, text, dryRun) {
  let response;
  try {
    response = await fetch(
      `/api/courses/${encodeURIComponent(courseId)}/enrollments/import${dryRun ? '?dry_run=true' : ''}`,
      {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv', Accept: 'application/json' },
        body: text,
      },
    );
  } catch {
    throw new ApiError(0, 'The server could not be reached. Check your connection and try again.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  if (response.ok || (response.status === 422 && Array.isArray(body?.errors))) return body;
  throw new ApiError(response.status, body?.detail ?? `${response.status} ${response.statusText}`);
}

/**
 * Upload a roster CSV: a preview first (rows to add, to change, unchanged, and every bad row
 * with its line), then the import, all or nothing.
 */
export default function RosterImport({ courseId, onImported }) {
  const { token } = useSession();
  const [text, setText] = useState('');
  const [fileName, setFileName] = useState(null);
  const [preview, setPreview] = useState(null);
  const [done, setDone] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const check = useCallback(
    async (content) => {
      setBusy(true);
      setError(null);
      setDone(null);
      try {
        setPreview(await sendCsv(courseId, token, content, true));
      } catch (failure) {
        setPreview(null);
        setError(failure.detail ?? String(failure));
      } finally {
        setBusy(false);
      }
    },
    [courseId, token],
  );

  const onFile = async (event) => {
    const file = event.target.files?.[0];
    if (!file) return;
    const content = await file.text();
    setFileName(file.name);
    setText(content);
    await check(content);
  };

  const importNow = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await sendCsv(courseId, token, text, false);
      if (answer.errors?.length) {
        setPreview(answer);
      } else {
        setDone(answer);
        setPreview(null);
        onImported();
      }
    } catch (failure) {
      setError(failure.detail ?? String(failure));
    } finally {
      setBusy(false);
    }
  };

  const bad = preview?.errors ?? [];
  return (
    <section className="card roster-import" aria-labelledby="import-title">
      <h2 id="import-title">Import a roster (CSV)</h2>
      <p className="hint">
        The first line names the columns: <code>user_id</code> and/or <code>email</code>, then <code>name</code>,{' '}
        <code>status</code> (approved when empty; pending, rejected, or removed). Comma or semicolon, UTF-8. Up
        to 10,000 rows; nothing is written until you confirm, and a file with a bad row is not imported at all.
      </p>
      <div className="field">
        <label htmlFor="import-file">CSV file</label>
        <input id="import-file" type="file" accept=".csv,text/csv" onChange={onFile} disabled={busy} />
      </div>
      {fileName && <p className="hint">File: {fileName}</p>}
      {preview && (
        <div className="import-preview" data-testid="import-preview" aria-live="polite">
          <p>
            <strong>{preview.added}</strong> to add · <strong>{preview.changed}</strong> to change ·{' '}
            <strong>{preview.unchanged}</strong> unchanged
            {bad.length > 0 && (
              <>
                {' '}
                · <strong className="bad-count">{bad.length}</strong> bad row{bad.length === 1 ? '' : 's'}
              </>
            )}
          </p>
          {bad.length > 0 ? (
            <>
              <p className="error" role="alert">
                Fix {bad.length === 1 ? 'this row' : 'these rows'} in the file and choose it again; nothing was imported.
              </p>
              <ul className="import-errors">
                {bad.slice(0, 200).map((e) => (
                  <li key={`${e.line}-${e.message}`} data-line={e.line}>
                    Line {e.line}: {e.message}
                  </li>
                ))}
                {bad.length > 200 && <li>… and {bad.length - 200} more</li>}
              </ul>
            </>
          ) : (
            <button type="button" disabled={busy} onClick={importNow}>
              Import {preview.added + preview.changed} change{preview.added + preview.changed === 1 ? '' : 's'}
            </button>
          )}
        </div>
      )}
      {done && (
        <p className="success" role="status" data-testid="import-done">
          Imported: {done.added} added, {done.changed} changed, {done.unchanged} unchanged.
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
