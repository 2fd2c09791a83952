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
