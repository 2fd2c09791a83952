import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { apiRequest } from './api.js';
import { clearToken, loadToken, saveToken } from './auth.js';
import { SessionContext } from './session.js';
import { linkHandler, matchRoute, navigate, usePathname } from './router.js';
import useFetched from './hooks/useFetched.js';
import useOidcSession, { CALLBACK_PATH } from './hooks/useOidcSession.js';
import useTokenLifetime from './hooks/useTokenLifetime.js';
import SignIn, { SignInExpired } from './components/SignIn.jsx';
import CourseList from './components/CourseList.jsx';
import CoursePage from './components/CoursePage.jsx';
import CheckInPage from './components/CheckInPage.jsx';
import ProjectorView from './components/ProjectorView.jsx';
import RosterPage from './components/RosterPage.jsx';
import JoinPage from './components/JoinPage.jsx';

const EXPIRED = 'Your sign-in has expired. Sign in again to continue.';

export default function App() {
  // How to sign in comes from the server (no token needed): a provider, the demo users, or neither.
  const { data: config, error: configError, reload: reloadConfig } = useFetched('/api/config', { load: apiRequest });
  const signInConfig = config?.sign_in ?? null;
  const oidc = useOidcSession(signInConfig?.mode === 'oidc' ? signInConfig : null);

  // A token pasted or picked from the demo users (only offered with --demo or the developer option).
  const [localToken, setLocalToken] = useState(loadToken);
  const [signInMessage, setSignInMessage] = useState(null);
  const pathname = usePathname();
  const route = matchRoute(pathname);

  const token = oidc.token ?? localToken;
  // The token of the moment, for requests; a renewal replaces it without reloading any page.
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const getToken = useCallback(() => tokenRef.current, []);
  // Changes when someone signs in (not on a renewal): who the caller is is asked again then.
  const [signIns, setSignIns] = useState(0);
  const signedInAs = oidc.token ? `oidc:${oidc.subject}` : `local:${signIns}`;

  const oidcRef = useRef(oidc);
  oidcRef.current = oidc;
  // `message`: why (a refused token, an expiry); then the provider's session is left alone, so the
  // page can say it. Without one, the person asked: the provider's session ends too, when it has
  // an end_session_endpoint.
  const signOut = useCallback((message = null) => {
    clearToken();
    setLocalToken(null);
    setSignInMessage(message);
    const current = oidcRef.current;
    if (current.status === 'signed-in' || current.status === 'expired') {
      if (message) current.forget();
      else current.signOut();
    }
  }, []);

  const signIn = useCallback((newToken) => {
    const trimmed = newToken.trim();
    if (!trimmed) return;
    saveToken(trimmed);
    setSignInMessage(null);
    setLocalToken(trimmed);
    setSignIns((n) => n + 1);
  }, []);
  const renewed = useCallback((fresh) => {
    saveToken(fresh);
    setLocalToken(fresh);
  }, []);

  // The token is checked by asking the server who it belongs to, once per sign-in.
  const hasToken = Boolean(token);
  const loadMe = useCallback((path) => apiRequest(path, { token: tokenRef.current }), [signedInAs]);
  const { data: me, error: meError } = useFetched(hasToken ? '/api/me' : null, { load: loadMe });
  useEffect(() => {
    if (meError) signOut(meError.status === 401 ? `That token was refused: ${meError.detail}` : meError.detail);
  }, [meError, signOut]);

  // Demo users get a fresh token before theirs expires; anyone else is asked to sign in again.
  // (Provider sign-ins renew through oidc-client-ts: refresh token or silent renew.)
  const userId = me?.id;
  const renew = useCallback(async () => {
    if (!userId || !signInConfig?.demo) return null;
    const demo = await apiRequest('/api/demo/users');
    const users = [demo?.teacher, ...(demo?.students ?? [])].filter(Boolean);
    return users.find((user) => user.id === userId)?.token ?? null;
  }, [userId, signInConfig]);
  const expire = useCallback(() => signOut(EXPIRED), [signOut]);
  useTokenLifetime(oidc.token ? null : localToken, { renew, onRenewed: renewed, expire });

  const session = useMemo(() => ({ token, getToken, me, signOut }), [token, getToken, me, signOut]);

  let page;
  if (configError && !config) {
    page = (
      <section aria-labelledby="offline-title">
        <h1 id="offline-title">The server cannot be reached</h1>
        <p className="error" role="alert">{configError.detail}</p>
        <button type="button" onClick={reloadConfig}>Try again</button>
      </section>
    );
  } else if (!config || oidc.status === 'loading' || (pathname === CALLBACK_PATH && !oidc.error)) {
    page = <p className="loading" role="status">Signing in…</p>;
  } else if (oidc.status === 'expired' && !localToken) {
    page = <SignInExpired onSignInAgain={() => oidc.signIn()} detail={oidc.error} />;
  } else if (!token) {
    // A QR link opened signed out: sign in here, and the same address (the check-in) shows next.
    const why = route.name === 'check-in' ? 'Sign in to check in; you will come straight back to the check-in.'
      : route.name === 'projector' ? 'Sign in to show the check-in code for this session; you will come back here.'
      : route.name === 'join' ? 'Sign in to join the course; you will come straight back here.' : null;
    page = (
      <SignIn
        signIn={signInConfig}
        oidc={signInConfig.mode === 'oidc' ? oidc : null}
        onSignIn={signIn}
        message={signInMessage ?? why}
      />
    );
  } else if (!me) page = <p className="loading" role="status">Signing in…</p>;
  else if (route.name === 'courses') page = <CourseList />;
  else if (route.name === 'course') page = <CoursePage key={route.courseId} courseId={route.courseId} />;
  else if (route.name === 'roster') page = <RosterPage key={route.courseId} courseId={route.courseId} />;
  else if (route.name === 'join') page = <JoinPage key={route.code} code={route.code} />;
  else if (route.name === 'check-in') page = <CheckInPage key={route.sessionId} sessionId={route.sessionId} />;
  else if (route.name === 'projector') page = <ProjectorView key={route.sessionId} sessionId={route.sessionId} />;
  else {
    page = (
      <section aria-labelledby="not-found-title">
        <h1 id="not-found-title" tabIndex={-1}>Page not found</h1>
        <p><a href="/" onClick={linkHandler('/')}>Go to your courses</a></p>
      </section>
    );
  }

  return (
    <SessionContext.Provider value={session}>
      <a className="skip-link" href="#main">Skip to main content</a>
      <header className="topbar">
        <a className="brand" href="/" onClick={linkHandler('/')}>attendance-live</a>
        {me && token && (
          <div className="who">
            <span>
              Signed in as <strong>{me.name || me.id}</strong> ({me.role})
            </span>
            <button
              type="button"
              className="secondary"
              onClick={() => {
                signOut(null);
                navigate('/');
              }}
            >
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1} data-renewals={oidc.renewals}>{page}</main>
    </SessionContext.Provider>
  );
}
