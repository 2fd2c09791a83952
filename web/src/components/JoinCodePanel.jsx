import { useCallback, useState } from 'react';
import { useApi } from '../session.js';
import { formatTime } from '../format.js';
import useFetched from '../hooks/useFetched.js';
import useQrCode from '../hooks/useQrCode.js';

/** `datetime-local` text (the browser's zone) as ISO 8601 UTC; empty stays null. */
function localToIso(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * The course's join link: create one (manual or automatic approval, an optional expiry), show
 * its code large, copy the link, a QR code for the projector, replace or revoke it.
 */
export default function JoinCodePanel({ course }) {
  const { request } = useApi();
  const path = `/api/courses/${encodeURIComponent(course.id)}/join-code`;
  const { data: loaded, error: loadError, setData } = useFetched(path);
  const current = loaded ?? null;
  const [approval, setApproval] = useState('manual');
  const [expires, setExpires] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [copied, setCopied] = useState(false);
  const [projecting, setProjecting] = useState(false);
  const link = current ? new URL(current.url, window.location.origin).href : null;
  const qr = useQrCode(link);

  const create = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      const body = { approval };
      const iso = localToIso(expires);
      if (iso) body.expires_at = iso;
      setData(await request(path, { method: 'POST', body }));
      setCopied(false);
    } catch (failure) {
      setError(failure.detail ?? String(failure));
    } finally {
      setBusy(false);
    }
  }, [approval, expires, path, request, setData]);

  const revoke = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      await request(path, { method: 'DELETE' });
      setData(null);
    } catch (failure) {
      setError(failure.detail ?? String(failure));
    } finally {
      setBusy(false);
    }
  }, [path, request, setData]);

  const copy = useCallback(async () => {
    try {
      await navigator.clipboard.writeText(link);
      setCopied(true);
    } catch {
      setError('Copying was not allowed here; select the link and copy it by hand.');
    }
  }, [link]);

  return (
    <section className="card join-panel" aria-labelledby="join-title">
      <h2 id="join-title">Join link</h2>
      {loadError && (
        <p className="error" role="alert">
          {loadError.detail}
        </p>
      )}
      {current ? (
        <>
          <p className={`join-code${projecting ? ' projecting' : ''}`} data-testid="join-code" aria-label={`Join code ${current.code.split('').join(' ')}`}>
            {current.code}
          </p>
          <p className="join-link">
            <input readOnly value={link} aria-label="Join link" onFocus={(event) => event.target.select()} />
            <button type="button" onClick={copy}>
              {copied ? 'Copied' : 'Copy link'}
            </button>
          </p>
          <p className="hint">
            {current.approval === 'auto' ? 'Students are approved as they join.' : 'You approve each request.'}{' '}
            {current.expires_at ? `Expires ${formatTime(current.expires_at)}.` : 'Works until you revoke it.'}
          </p>
          {qr && (
            <figure className={`join-qr${projecting ? ' projecting' : ''}`}>
              <img src={qr} alt={`QR code of the join link ${link}`} />
              <figcaption className="hint">Scan to join {course.code}</figcaption>
            </figure>
          )}
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setProjecting((p) => !p)} aria-pressed={projecting}>
              {projecting ? 'Smaller' : 'Show large for the projector'}
            </button>
            <button type="button" className="secondary" disabled={busy} onClick={create}>
              New code
            </button>
            <button type="button" className="danger" disabled={busy} onClick={revoke}>
              Revoke
            </button>
          </div>
        </>
      ) : (
        !loadError && (
          <p className="hint">No join link yet. Students open the link (or type the code) and sign in.</p>
        )
      )}
      <details className="join-options" open={!current}>
        <summary>{current ? 'Options for a new code' : 'Options'}</summary>
        <div className="field">
          <label htmlFor="join-approval">Approval</label>
          <select id="join-approval" value={approval} onChange={(event) => setApproval(event.target.value)}>
            <option value="manual">I approve each student</option>
            <option value="auto">Approve everyone who joins</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="join-expires">Expires (optional)</label>
          <input id="join-expires" type="datetime-local" value={expires} onChange={(event) => setExpires(event.target.value)} />
        </div>
      </details>
      {!current && (
        <button type="button" disabled={busy || Boolean(course.archived_at)} onClick={create}>
          Create join link
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
