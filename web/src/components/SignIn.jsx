import { useEffect, useState } from 'react';
import { apiRequest } from '../api.js';
import useFetched from '../hooks/useFetched.js';
import PageHeading from './PageHeading.jsx';

function DemoUsers({ demo, onSignIn }) {
  const users = [demo.teacher, ...(demo.students ?? [])].filter(Boolean);
  return (
    <section className="card" aria-labelledby="demo-title">
      <h2 id="demo-title">Demo users</h2>
      <p>
        This server runs with demo data
        {demo.course ? <> for <strong>{demo.course.code}</strong> ({demo.course.title})</> : null}.
        Pick someone to sign in as.
      </p>
      <ul className="demo-users">
        {users.map((user) => (
          <li key={user.id}>
            <button type="button" onClick={() => onSignIn(user.token)} data-user-id={user.id}>
              Sign in as {user.name}
            </button>
            <span className="hint">
              {user.role}
              {user.enrollment && user.enrollment !== 'approved' ? `, enrollment ${user.enrollment}` : ''}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

// The paste-a-token box: only with --demo or the developer option SIGN_IN_TOKEN_FORM.
function TokenForm({ onSignIn, developer }) {
  const [token, setToken] = useState('');
  return (
    <form
      className="card token-form"
      aria-labelledby="token-title"
      onSubmit={(event) => {
        event.preventDefault();
        onSignIn(token);
      }}
    >
      <h2 id="token-title">{developer ? 'Developer option: sign in with a token' : 'Sign in with a token'}</h2>
      <label htmlFor="token">Access token</label>
      <input
        id="token"
        name="token"
        type="password"
        autoComplete="off"
        spellCheck={false}
        required
        value={token}
        onChange={(event) => setToken(event.target.value)}
        aria-describedby="token-help"
      />
      <p id="token-help" className="hint">
        Paste a token (a JWT) and press Enter. It is kept in this tab only.
        {developer ? ' This box is for developers and scripts; people sign in with the button above.' : ''}
      </p>
      <button type="submit">Sign in</button>
    </form>
  );
}

function ProviderSignIn({ signIn, oidc }) {
  const { checkProvider } = oidc;
  useEffect(() => {
    checkProvider();
  }, [checkProvider]);
  const name = signIn.display_name || 'your identity provider';
  return (
    <div className="card provider-sign-in">
      <p>Sign in with your account at {name}. You will come straight back here.</p>
      {oidc.providerProblem && (
        <p className="error" role="alert">
          {oidc.providerProblem}{' '}
          <button type="button" className="secondary" onClick={checkProvider}>
            Try again
          </button>
        </p>
      )}
      <button type="button" className="sign-in-button" onClick={() => oidc.signIn()}>
        Sign in with {name}
      </button>
    </div>
  );
}

function HowToConfigure({ help }) {
  return (
    <section className="card" aria-labelledby="configure-title">
      <h2 id="configure-title">Sign-in is not set up yet</h2>
      <p>{help}</p>
      <p className="hint">
        For example, with Keycloak:{' '}
        <code>OIDC_ISSUER=https://login.example.edu/realms/school OIDC_CLIENT_ID=attendance-live attendance-live serve</code>
      </p>
    </section>
  );
}

/**
 * The sign-in page, as `GET /api/config`'s `sign_in` says: the provider's
 * button (`oidc`), the demo users (`demo`), the developer's token box, or how
 * an operator turns sign-in on (`unconfigured`).
 * @param {{signIn: {mode: string, token_form: boolean, demo: boolean, display_name?: string, help?: string},
 *   oidc?: ReturnType<typeof import('../hooks/useOidcSession.js').default>|null,
 *   onSignIn: (token: string) => void, message?: string|null}} props
 */
export default function SignIn({ signIn, oidc = null, onSignIn, message }) {
  const { data } = useFetched(signIn.demo ? '/api/demo/users' : null, { load: apiRequest });
  const demo = data && (data.teacher || data.students) ? data : null;
  const error = oidc?.error ?? null;

  return (
    <section className="sign-in" aria-labelledby="sign-in-title">
      <PageHeading id="sign-in-title" title="Sign in" />
      {(message || error) && (
        <p className="error" role="alert">
          {[message, error].filter(Boolean).join(' ')}
        </p>
      )}
      {signIn.mode === 'oidc' && oidc && <ProviderSignIn signIn={signIn} oidc={oidc} />}
      {signIn.mode === 'unconfigured' && <HowToConfigure help={signIn.help} />}
      {demo && <DemoUsers demo={demo} onSignIn={onSignIn} />}
      {signIn.token_form && <TokenForm onSignIn={onSignIn} developer={!signIn.demo} />}
    </section>
  );
}

/** What a person sees when the sign-in ran out and could not be renewed. */
export function SignInExpired({ onSignInAgain, detail }) {
  return (
    <section className="sign-in" aria-labelledby="expired-title">
      <PageHeading id="expired-title" title="Your sign-in has expired" />
      <div className="card">
        <p>
          Your sign-in ran out and could not be renewed, so the dashboard stopped using it. Sign in again
          to carry on where you were.
        </p>
        {detail && <p className="hint">Why the renewal failed: {detail}</p>}
        <button type="button" onClick={onSignInAgain}>
          Sign in again
        </button>
      </div>
    </section>
  );
}
