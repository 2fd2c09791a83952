import { useState } from 'react';
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

// The demo list exists only when the server was started with --demo. A server
// whose /healthz says `"demo": false` is not asked, which spares the console a 404.
async function loadDemoUsers(path) {
  const health = await apiRequest('/healthz').catch(() => null);
  return health?.demo === false ? null : apiRequest(path);
}

export default function SignIn({ onSignIn, message }) {
  const [token, setToken] = useState('');
  // No demo data (or an error): paste a token instead.
  const { data } = useFetched('/api/demo/users', { load: loadDemoUsers });
  const demo = data && (data.teacher || data.students) ? data : null;

  return (
    <section className="sign-in" aria-labelledby="sign-in-title">
      <PageHeading id="sign-in-title" title="Sign in" />
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <form
        className="card"
        onSubmit={(event) => {
          event.preventDefault();
          onSignIn(token);
        }}
      >
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
          Paste the token (a JWT) you were given and press Enter. It is kept in this tab only.
        </p>
        <button type="submit">Sign in</button>
      </form>
      {demo && <DemoUsers demo={demo} onSignIn={onSignIn} />}
    </section>
  );
}
