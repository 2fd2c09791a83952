// Who is signed in, shared with every screen; a 401 anywhere signs the tab out.
import { createContext, useCallback, useContext } from 'react';
import { apiRequest, downloadWithToken } from './api.js';

export const SessionContext = createContext({
  token: null,
  // The token of the moment (a renewal replaces it without changing `request`).
  getToken: null,
  me: null,
  signOut: () => {},
});

export function useSession() {
  return useContext(SessionContext);
}

/** `request(path, options)` and `download(path, name)` bound to the signed-in token. */
export function useApi() {
  const { token, getToken, signOut } = useSession();
  // With `getToken`, requests keep their identity across token renewals, so nothing reloads.
  const current = getToken ?? token;
  const guard = useCallback(
    async (promise) => {
      try {
        return await promise;
      } catch (error) {
        if (error?.status === 401) {
          signOut(`You were signed out: ${error.detail}. Sign in again.`);
        }
        throw error;
      }
    },
    [signOut],
  );
  const request = useCallback(
    (path, options = {}) =>
      guard(apiRequest(path, { ...options, token: typeof current === 'function' ? current() : current })),
    [guard, current],
  );
  const download = useCallback(
    (path, fallbackName) =>
      guard(downloadWithToken(path, typeof current === 'function' ? current() : current, fallbackName)),
    [guard, current],
  );
  return { request, download };
}
