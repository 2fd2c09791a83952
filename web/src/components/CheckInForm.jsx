import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '../session.js';
import { statusLabel } from '../format.js';
import { normaliseCode, refusalMessage, submitCheckIn } from '../checkin.js';

/**
 * A check-in with the code shown in the room (code mode) or a plain button (open
 * mode). Every refusal says what to do next. `initialCode` (from a QR link) is
 * filled in and, with `submitInitial`, sent at once: the code only lives a few
 * seconds. With `socket` (the page's live socket) connected, the check-in goes over it, and
 * over HTTP otherwise (submitCheckIn).
 */
export default function CheckInForm({ sessionId, codeMode, initialCode = '', submitInitial = false, onCheckedIn, disabled = false, socket = null }) {
  const { request } = useApi();
  const [code, setCode] = useState(normaliseCode(initialCode));
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState(null);
  const sent = useRef(false);
  const inputId = `code-${sessionId}`.replace(/[^A-Za-z0-9_-]/g, '_');

  const send = useCallback(
    async (typed) => {
      setBusy(true);
      setRefusal(null);
      try {
        const record = await submitCheckIn(request, sessionId, codeMode ? typed : undefined, socket);
        if (record.status === 'absent' || record.status === 'excused') {
          setRefusal({ reason: 'marked', text: `Your teacher has already marked you ${statusLabel(record.status).toLowerCase()}.` });
        }
        onCheckedIn?.(record);
      } catch (error) {
        if (error.status !== 401) setRefusal(refusalMessage(error));
      } finally {
        setBusy(false);
      }
    },
    [request, sessionId, codeMode, onCheckedIn, socket],
  );

  useEffect(() => {
    if (submitInitial && !sent.current && initialCode) {
      sent.current = true;
      send(normaliseCode(initialCode));
    }
  }, [submitInitial, initialCode, send]);

  const submit = (event) => {
    event.preventDefault();
    if (codeMode && !normaliseCode(code)) {
      setRefusal(refusalMessage({ status: 403, reason: 'code_required' }));
      return;
    }
    send(code);
  };

  return (
    <form className="check-in-form" onSubmit={submit} data-session-id={sessionId}>
      {codeMode && (
        <div className="field">
          <label htmlFor={inputId}>Code shown in the room</label>
          <input
            id={inputId}
            name="code"
            className="code-input"
            value={code}
            onChange={(e) => setCode(normaliseCode(e.target.value))}
            autoComplete="off"
            autoCapitalize="characters"
            spellCheck={false}
            inputMode="text"
            maxLength={12}
            placeholder="e.g. 7HKX3M"
            aria-describedby={refusal ? `${inputId}-refusal` : undefined}
          />
        </div>
      )}
      <button type="submit" className="check-in" disabled={busy || disabled}>
        {busy ? 'Checking in…' : 'Check in'}
      </button>
      {refusal && (
        <p className="error" role="alert" id={`${inputId}-refusal`} data-reason={refusal.reason}>
          {refusal.text}
        </p>
      )}
    </form>
  );
}
