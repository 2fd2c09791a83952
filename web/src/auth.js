// The token lives in this tab's sessionStorage only: never in a URL, never in
// localStorage, gone when the tab closes.
const KEY = 'attendance-live.token';

export function loadToken() {
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  window.sessionStorage.setItem(KEY, token);
}

export function clearToken() {
  try {
    window.sessionStorage.removeItem(KEY);
  } catch {
    // Storage unavailable: nothing to clear.
  }
}

/**
 * When the token stops being valid, from its `exp` claim (milliseconds since
 * the epoch), or `null` when it has none or cannot be read. Only for
 * scheduling: the server verifies every token; nothing here is trusted.
 * @param {string|null} token
 */
export function tokenExpiry(token) {
  const payload = token?.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}
