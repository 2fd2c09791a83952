// Who is signed in, shared with every screen; a 401 anywhere signs the tab out.
import { createContext, useCallback, useContext } from 'react';
import { apiRequest, downloadWithToken } from './api.js';

export const SessionContext = createContext({
  token: null,
  me: null,
  signOut: () => {},
});

export function useSession() {
  return useContext(SessionContext);
}

/** `request(path, options)` and `download(path, name)` bound to the signed-in token. */
export function useApi() {
  const { token, signOut } = useSession();
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
    (path, options = {}) => guard(apiRequest(path, { ...options, token })),
    [guard, token],
  );
  const download = useCallback(
    (path, fallbackName) => guard(downloadWithToken(path, token, fallbackName)),
    [guard, token],
  );
  return { request, download };
}
