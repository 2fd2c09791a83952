// A token ends at its `exp`, and the server then closes the sockets that used
// it (`tokenExpired`). Before that moment, this hook asks `renew` for a fresh
// token of the same user (the demo users' list hands them out); when there is
// none, at the moment of expiry it calls `expire`, which signs the tab out with
// a message telling the user to sign in again.
import { useEffect } from 'react';
import { tokenExpiry } from '../auth.js';

// Renew this long before expiry, or halfway through a shorter lifetime.
export const RENEW_AHEAD_MS = 60_000;
// setTimeout's longest delay; a later expiry is rescheduled when it fires.
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * @param {string|null} token
 * @param {{renew: () => Promise<string|null>, onRenewed: (token: string) => void,
 *   expire: () => void, now?: () => number}} actions
 */
export default function useTokenLifetime(token, { renew, onRenewed, expire, now = Date.now }) {
  useEffect(() => {
    const expiresAt = tokenExpiry(token);
    if (expiresAt == null) return undefined;
    let cancelled = false;
    const timers = [];
    const at = (when, action) => {
      const delay = Math.max(0, when - now());
      timers.push(setTimeout(delay > MAX_DELAY_MS ? () => at(when, action) : action, Math.min(delay, MAX_DELAY_MS)));
    };
    at(expiresAt, () => {
      if (!cancelled) expire();
    });
    const lifetime = expiresAt - now();
    const renewAt = expiresAt - Math.min(RENEW_AHEAD_MS, Math.max(lifetime, 0) / 2);
    at(renewAt, () => {
      renew().then(
        (fresh) => {
          if (!cancelled && fresh && fresh !== token && (tokenExpiry(fresh) ?? Infinity) > expiresAt) onRenewed(fresh);
        },
        () => {
          // No fresh token to be had: the expiry timer still signs the tab out.
        },
      );
    });
    return () => {
      cancelled = true;
      timers.forEach(clearTimeout);
    };
  }, [token, renew, onRenewed, expire, now]);
}
