// The token lives in this tab's sessionStorage only: never in a URL, never in
// localStorage, gone when the tab closes.
const KEY = 'attendance-live.token';
// An LTI launch inside an LMS iframe whose browser blocks third-party storage hands the token
// over in the fragment (#lti_token=…: never sent to a server, so never logged); it is taken
// out of the address at once and kept here, in this page's memory only.
const LAUNCH_FRAGMENT = /^#lti_token=([\w.-]+)$/;
let launchToken = null;

function takeLaunchToken() {
  const match = LAUNCH_FRAGMENT.exec(window.location.hash);
  if (match) {
    window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
    launchToken = match[1];
    try {
      window.sessionStorage.setItem(KEY, launchToken);
    } catch {
      // Storage blocked (the reason for the fragment): memory only.
    }
  }
  return launchToken;
}

export function loadToken() {
  const launched = takeLaunchToken();
  if (launched) return launched;
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token) {
  launchToken = null;
  try {
    window.sessionStorage.setItem(KEY, token);
  } catch {
    launchToken = token; // storage blocked (an LMS iframe): this page's memory
  }
}

export function clearToken() {
  launchToken = null;
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
