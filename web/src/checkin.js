// Check-in helpers shared by the check-in page, the student's session card and
// the projector: the device id, the page's path, and what to tell a student
// whose check-in was refused.

const DEVICE_KEY = 'attendance-live.device';

/**
 * This browser's device id, kept in localStorage (it outlives a sign-out, which
 * is the point: a second student checking in on the same phone gets flagged on
 * the teacher's roster). Not a secret and not a proof, a hint for the teacher.
 */
export function deviceId() {
  try {
    let id = window.localStorage.getItem(DEVICE_KEY);
    if (!id || !/^d-[0-9a-f]{16,64}$/.test(id)) {
      const bytes = new Uint8Array(12);
      window.crypto.getRandomValues(bytes);
      id = `d-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
      window.localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  } catch {
    return undefined; // storage refused (private mode): the address is still audited
  }
}

/** The dashboard's check-in page for a session, with the code filled in when given. */
export function checkInPath(sessionId, code) {
  const path = `/check-in/${encodeURIComponent(sessionId)}`;
  return code ? `${path}?code=${encodeURIComponent(code)}` : path;
}

export function projectorPath(sessionId) {
  return `/sessions/${encodeURIComponent(sessionId)}/projector`;
}

/** What a student types, as the server reads it: upper case, no spaces or dashes. */
export function normaliseCode(text) {
  return (text ?? '').toUpperCase().replace(/[\s-]/g, '');
}

/**
 * POST the check-in with the code (if any) and this device's id.
 * @param {(path: string, options?: object) => Promise<any>} request from useApi()
 */
export function submitCheckIn(request, sessionId, code) {
  const body = { device_id: deviceId() };
  const typed = normaliseCode(code);
  if (typed) body.code = typed;
  return request(`/api/sessions/${encodeURIComponent(sessionId)}/check-in`, { method: 'POST', body });
}

const ADVICE = {
  code_required: 'Type the code shown on the screen in the room, or scan its QR code.',
  code_invalid: 'That code is wrong or has expired: type the code on the screen now, or scan the QR code again.',
  network_not_allowed: "Connect to the classroom's Wi-Fi (the campus network), then try again.",
};

/** What to tell the student about a failed check-in (an ApiError), and what to do next. */
export function refusalMessage(error) {
  if (error?.status === 403 && error.reason && ADVICE[error.reason]) {
    return { reason: error.reason, text: ADVICE[error.reason], detail: error.detail };
  }
  if (error?.status === 409) {
    return { reason: 'ended', text: 'This session has ended: check-in is closed. Ask your teacher if you were there.', detail: error.detail };
  }
  if (error?.status === 404) {
    return { reason: 'not_found', text: 'This session was not found, or you are not an approved student of its course.', detail: error.detail };
  }
  if (error?.status === 403) {
    return { reason: 'forbidden', text: error.detail, detail: error.detail };
  }
  return { reason: 'failed', text: `Check-in failed: ${error?.detail ?? 'unknown error'}. Try again.`, detail: error?.detail };
}
