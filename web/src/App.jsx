import { useCallback, useEffect, useMemo, useState } from 'react';
import { apiRequest } from './api.js';
import { clearToken, loadToken, saveToken } from './auth.js';
import { SessionContext } from './session.js';
import { linkHandler, matchRoute, navigate, usePathname } from './router.js';
import useFetched from './hooks/useFetched.js';
import useTokenLifetime from './hooks/useTokenLifetime.js';
import SignIn from './components/SignIn.jsx';
import CourseList from './components/CourseList.jsx';
import CoursePage from './components/CoursePage.jsx';
import CheckInPage from './components/CheckInPage.jsx';
import ProjectorView from './components/ProjectorView.jsx';
import RosterPage from './components/RosterPage.jsx';
import JoinPage from './components/JoinPage.jsx';

export default function App() {
  const [token, setToken] = useState(loadToken);
  const [signInMessage, setSignInMessage] = useState(null);
  const pathname = usePathname();
  const route = matchRoute(pathname);

  const signOut = useCallback((message = null) => {
    clearToken();
    setToken(null);
    setSignInMessage(message);
  }, []);

  const signIn = useCallback((newToken) => {
    const trimmed = newToken.trim();
    if (!trimmed) return;
    saveToken(trimmed);
    setSignInMessage(null);
    setToken(trimmed);
  }, []);

  // The token is checked by asking the server who it belongs to (a new token: a new `load`).
  const loadAsToken = useCallback((path) => apiRequest(path, { token }), [token]);
  const { data: me, error: meError } = useFetched(token ? '/api/me' : null, { load: loadAsToken });
  useEffect(() => {
    if (meError) signOut(meError.status === 401 ? `That token was refused: ${meError.detail}` : meError.detail);
  }, [meError, signOut]);

  // Demo users get a fresh token before theirs expires; anyone else is asked to sign in again.
  const userId = me?.id;
  const renew = useCallback(async () => {
    if (!userId) return null;
    const demo = await apiRequest('/api/demo/users');
    const users = [demo?.teacher, ...(demo?.students ?? [])].filter(Boolean);
    return users.find((user) => user.id === userId)?.token ?? null;
  }, [userId]);
  const expire = useCallback(() => signOut('Your sign-in has expired. Sign in again to continue.'), [signOut]);
  useTokenLifetime(token, { renew, onRenewed: signIn, expire });

  const session = useMemo(() => ({ token, me, signOut }), [token, me, signOut]);

  let page;
  if (!token) {
    // A QR link opened signed out: sign in here, and the same address (the check-in) shows next.
    const why = route.name === 'check-in' ? 'Sign in to check in; you will come straight back to the check-in.'
      : route.name === 'projector' ? 'Sign in to show the check-in code for this session; you will come back here.'
      : route.name === 'join' ? 'Sign in to join the course; you will come straight back here.' : null;
    page = <SignIn onSignIn={signIn} message={signInMessage ?? why} />;
  }
  else if (!me) page = <p className="loading" role="status">Signing in…</p>;
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
        {me && (
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
      <main id="main" tabIndex={-1}>{page}</main>
    </SessionContext.Provider>
  );
}
