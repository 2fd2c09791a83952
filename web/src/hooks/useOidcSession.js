// Sign-in at an OpenID Provider (Authorization Code flow with PKCE, a public
// client) through oidc-client-ts: the library does the protocol (discovery,
// PKCE, state, the code exchange, refresh tokens or silent renew); this hook
// only keeps what the page needs: the access token, whether it is current, and
// an error in plain words.
//
// Tokens are kept in this tab's sessionStorage by the library (a reload stays
// signed in until the token's end; closing the tab forgets them), never in a
// cookie. The page the person was on travels through the sign-in as the
// request's `state` and is opened again on return (`/signed-in`).
//
// The library is loaded only when the server names a provider (a chunk of its own):
// a demo or token-only dashboard does not download it.
import { useCallback, useEffect, useState } from 'react';
import { navigate } from '../router.js';

export const CALLBACK_PATH = '/signed-in';
// Renew this long before the access token ends (refresh token, or silent renew).
export const RENEW_AHEAD_SECONDS = 30;

/**
 * A UserManager for the server's `GET /api/config` `sign_in` block.
 * @param {typeof import('oidc-client-ts')} oidc the library
 */
export function createUserManager(oidc, signIn, origin = window.location.origin) {
  const { UserManager, WebStorageStateStore } = oidc;
  const store = new WebStorageStateStore({ store: window.sessionStorage });
  return new UserManager({
    authority: signIn.issuer,
    client_id: signIn.client_id,
    redirect_uri: `${origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: 'code',
    scope: signIn.scopes,
    // RFC 8707's resource indicator (sent on the authorization and token requests), and
    // Auth0's `audience`: how a provider is asked for an access token for this API.
    ...(signIn.audience ? { resource: signIn.audience, extraQueryParams: { audience: signIn.audience } } : {}),
    automaticSilentRenew: true,
    accessTokenExpiringNotificationTimeInSeconds: RENEW_AHEAD_SECONDS,
    userStore: store,
    stateStore: store,
    loadUserInfo: false,
    monitorSession: false,
  });
}

/**
 * An error of the sign-in, in words a person can act on.
 * @param {unknown} error
 * @param {{display_name?: string|null, issuer?: string|null}} signIn
 */
export function plainWords(error, signIn) {
  const name = signIn?.display_name || 'the sign-in provider';
  const code = error?.error;
  const description = error?.error_description;
  const said = description ? `: “${description}”` : '';
  if (code === 'access_denied') return `Sign-in was cancelled or refused at ${name}${said}. Sign in again to continue.`;
  if (code === 'invalid_client' || code === 'unauthorized_client') {
    return `${name} does not accept this dashboard as a client (${code}${said}). An administrator must check OIDC_CLIENT_ID and the redirect URI ${window.location.origin}${CALLBACK_PATH} registered at ${name}.`;
  }
  if (code === 'invalid_scope') return `${name} refused the requested scopes${said}. An administrator must check OIDC_SCOPES.`;
  if (code === 'invalid_target') return `${name} does not know the API audience${said}. An administrator must check OIDC_AUDIENCE.`;
  if (code === 'invalid_grant') return `Your sign-in at ${name} is no longer valid${said}. Sign in again.`;
  if (code === 'login_required' || code === 'interaction_required' || code === 'consent_required') {
    return `${name} needs you to sign in again.`;
  }
  if (code) return `${name} refused the sign-in (${code}${said}).`;
  const message = error instanceof Error ? error.message : String(error ?? '');
  if (/no matching state/i.test(message)) {
    return 'This sign-in response was already used or belongs to another tab. Sign in again.';
  }
  if (error instanceof TypeError || /fetch|network|load failed/i.test(message)) {
    return `${name} (${signIn?.issuer}) cannot be reached right now, so nobody can sign in. Try again in a moment; if it lasts, tell your administrator.`;
  }
  return `Sign-in at ${name} failed: ${message || 'unknown error'}.`;
}

function returnPath(user) {
  const to = user?.state?.returnTo;
  // Only a path of this site: never an address elsewhere (an open redirect).
  return typeof to === 'string' && to.startsWith('/') && !to.startsWith('//') && !to.startsWith(CALLBACK_PATH) ? to : '/';
}

// The callback is completed once per address even if the effect runs twice (React's
// StrictMode in development): the code in it can be exchanged only once.
const callbacks = new Map();
function completeSignIn(manager) {
  const url = window.location.href;
  if (!callbacks.has(url)) callbacks.set(url, manager.signinRedirectCallback(url));
  return callbacks.get(url);
}

/**
 * @param {null | {issuer: string, client_id: string, scopes: string, audience?: string|null,
 *   display_name?: string|null}} signIn the `sign_in` block of `GET /api/config` (null: off)
 * @returns {{status: 'off'|'loading'|'signed-out'|'signed-in'|'expired', token: string|null,
 *   error: string|null, providerProblem: string|null, signIn: (returnTo?: string) => Promise<void>,
 *   signOut: () => Promise<void>, forget: () => Promise<void>, checkProvider: () => Promise<void>,
 *   renewals: number}}
 */
export default function useOidcSession(signIn) {
  const issuer = signIn?.issuer ?? null;
  const clientId = signIn?.client_id ?? null;
  const scopes = signIn?.scopes ?? null;
  const audience = signIn?.audience ?? null;
  const [manager, setManager] = useState(null);
  const [state, setState] = useState({ status: issuer ? 'loading' : 'off', user: null, error: null, renewals: 0 });
  const [providerProblem, setProviderProblem] = useState(null);

  useEffect(() => {
    setManager(null);
    if (!issuer || !clientId) {
      setState((current) => ({ ...current, status: 'off', user: null }));
      return undefined;
    }
    let live = true;
    setState((current) => ({ ...current, status: 'loading' }));
    import('oidc-client-ts').then(
      (oidc) => {
        if (live) setManager(createUserManager(oidc, { issuer, client_id: clientId, scopes, audience }));
      },
      () => {
        if (live) {
          setState((current) => ({
            ...current,
            status: 'signed-out',
            error: 'The sign-in part of this page could not be loaded. Reload the page to try again.',
          }));
        }
      },
    );
    return () => {
      live = false;
    };
  }, [issuer, clientId, scopes, audience]);

  useEffect(() => {
    if (!manager) return undefined;
    let live = true;
    // Idempotent; after an unmount and mount (React's StrictMode in development) it runs again.
    manager.startSilentRenew();
    const update = (change) => live && setState((current) => ({ ...current, ...(typeof change === 'function' ? change(current) : change) }));
    const onLoaded = (user) =>
      update((current) => ({
        status: 'signed-in',
        user,
        error: null,
        renewals: current.status === 'signed-in' && current.user?.profile?.sub === user.profile?.sub ? current.renewals + 1 : current.renewals,
      }));
    const onExpired = () => update({ status: 'expired' });
    const onUnloaded = () => update({ status: 'signed-out', user: null });
    const onRenewError = (error) => update({ error: plainWords(error, signIn) });
    const removers = [
      manager.events.addUserLoaded(onLoaded),
      manager.events.addAccessTokenExpired(onExpired),
      manager.events.addUserUnloaded(onUnloaded),
      manager.events.addSilentRenewError(onRenewError),
    ];

    (async () => {
      if (window.location.pathname === CALLBACK_PATH) {
        try {
          const user = await completeSignIn(manager);
          navigate(returnPath(user), { replace: true });
          update({ status: 'signed-in', user, error: null });
        } catch (error) {
          navigate('/', { replace: true });
          update({ status: 'signed-out', user: null, error: plainWords(error, signIn) });
        }
        return;
      }
      const user = await manager.getUser();
      if (user && !user.expired) {
        update({ status: 'signed-in', user, error: null });
      } else if (user?.refresh_token) {
        try {
          update({ status: 'signed-in', user: await manager.signinSilent(), error: null });
        } catch {
          update({ status: 'expired', user });
        }
      } else {
        update({ status: user ? 'expired' : 'signed-out', user });
      }
    })().catch((error) => update({ status: 'signed-out', user: null, error: plainWords(error, signIn) }));

    return () => {
      live = false;
      removers.forEach((remove) => remove());
      manager.stopSilentRenew();
    };
    // `signIn` only feeds messages; the manager is what the effect is about.
  }, [manager]);

  const checkProvider = useCallback(async () => {
    if (!manager) return;
    try {
      await manager.metadataService.getMetadata();
      setProviderProblem(null);
    } catch (error) {
      setProviderProblem(plainWords(error, signIn));
    }
  }, [manager]);

  const startSignIn = useCallback(
    async (returnTo = window.location.pathname + window.location.search) => {
      if (!manager) return;
      setState((current) => ({ ...current, error: null }));
      try {
        await manager.signinRedirect({ state: { returnTo } });
      } catch (error) {
        setState((current) => ({ ...current, error: plainWords(error, signIn) }));
      }
    },
    [manager],
  );

  const signOut = useCallback(async () => {
    if (!manager) return;
    const metadata = await manager.metadataService.getMetadata().catch(() => null);
    if (metadata?.end_session_endpoint) {
      // Ends the provider's session too, then comes back to this site's front page.
      await manager.signoutRedirect().catch(() => manager.removeUser());
    } else {
      await manager.removeUser();
    }
    setState((current) => ({ ...current, status: 'signed-out', user: null }));
  }, [manager]);

  // Forget the tokens here only (the server refused them): no trip to the provider, so the
  // page can say why.
  const forget = useCallback(async () => {
    if (!manager) return;
    await manager.removeUser();
    setState((current) => ({ ...current, status: 'signed-out', user: null }));
  }, [manager]);

  return {
    status: state.status,
    token: state.status === 'signed-in' ? state.user?.access_token ?? null : null,
    subject: state.user?.profile?.sub ?? null,
    error: state.error,
    providerProblem,
    renewals: state.renewals,
    signIn: startSignIn,
    signOut,
    forget,
    checkProvider,
  };
}
