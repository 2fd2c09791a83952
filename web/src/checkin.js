// Check-in helpers shared by the check-in page, the student's session card and
// the projector: the device id, the page's path, and what to tell a student
// whose check-in was refused.

import { ApiError } from './api.js';

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

/** How long a check-in waits for the socket's answer before it asks over HTTP instead. */
export const SOCKET_CHECK_IN_TIMEOUT_MS = 5000;

// A socket refusal's `reason` as the HTTP status that answers it (docs/protocol.md, checkIn),
// so that both paths give the student the same message (refusalMessage).
const STATUS_OF_REASON = {
  code_required: 403,
  code_invalid: 403,
  network_not_allowed: 403,
  forbidden: 403,
  not_found: 404,
  session_ended: 409,
  invalid_payload: 422,
  too_many_attempts: 429,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** The ApiError the HTTP check-in would have thrown for a socket refusal `{ok: false, reason, message}`. */
export function socketRefusalError(answer) {
  const reason = typeof answer?.reason === 'string' ? answer.reason : 'internal';
  const detail = typeof answer?.message === 'string' ? answer.message : 'The server refused the check-in';
  const status = STATUS_OF_REASON[reason] ?? 400;
  // The HTTP body carries a reason only for the session's rules and the wrong-code limit.
  const httpReason = status === 403 && reason !== 'forbidden' ? reason : status === 429 && reason === 'too_many_attempts' ? reason : null;
  return new ApiError(status, detail, httpReason);
}

/**
 * `checkIn` on the live socket: the record, or the refusal as an ApiError. Resolves to null when
 * the socket could not carry it (no answer in time, disconnected meanwhile, or its own event rate
 * limit): the caller then asks over HTTP (a check-in is idempotent, so asking twice is harmless).
 */
export function checkInOverSocket(socket, body, timeoutMs = SOCKET_CHECK_IN_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit('checkIn', body, (error, answer) => {
      if (error || answer == null || typeof answer !== 'object') resolve(null);
      else if (answer.ok === true) resolve(answer.record);
      else if (answer.reason === 'rate_limited') resolve(null);
      else reject(socketRefusalError(answer));
    });
  });
}

/**
 * Check in with the code (if any) and this device's id: on the live socket when it is connected
 * (`checkIn`, docs/protocol.md), over HTTP (`POST /api/sessions/{id}/check-in`) otherwise or when
 * the socket does not answer. Either way it resolves to the record or throws an ApiError.
 * @param {(path: string, options?: object) => Promise<any>} request from useApi()
 * @param {{connected?: boolean, timeout?: Function}|null} [socket] the page's live socket, if any
 */
export async function submitCheckIn(request, sessionId, code, socket = null) {
  const body = { device_id: deviceId() };
  const typed = normaliseCode(code);
  if (typed) body.code = typed;
  if (socket?.connected && typeof socket.timeout === 'function') {
    const record = await checkInOverSocket(socket, { session_id: sessionId, ...body });
    if (record) return record;
  }
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
