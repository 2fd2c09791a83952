// A real OpenID Provider for the browser tests: panva's certified `oidc-provider`
// (npm), on a free loopback port, configured as an institution's would be for
// this dashboard: a public client (no secret) that must use PKCE, the
// Authorization Code flow, refresh tokens, JWT access tokens for our API's
// audience carrying a `role` claim, and short lifetimes so that renewals
// happen during a test. Its own login page (devInteractions) takes any login
// name and any password; the accounts below give the names and roles.
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { freePort } from './support.js';

export const CLIENT_ID = 'attendance-dashboard';
export const AUDIENCE = 'https://attendance-live.test/api';
export const API_SCOPE = 'attendance';

export const ACCOUNTS = {
  'teacher-ada': { name: 'Ada Lovelace', email: 'ada@uni.test', role: 'teacher' },
  'student-sam': { name: 'Sam Student', email: 'sam@uni.test', role: 'student' },
};

/**
 * @param {{dashboard: string, accessTokenSeconds?: number, clientId?: string}} options
 *   `dashboard`: the attendance-live server's origin (its redirect URIs are registered).
 * @returns {Promise<{issuer: string, stop: () => Promise<void>, port: number}>}
 */
export async function startProvider({ dashboard, accessTokenSeconds = 40, clientId = CLIENT_ID }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const claimsOf = (id) => ({ sub: id, ...(ACCOUNTS[id] ?? { name: id, email: `${id}@uni.test`, role: 'student' }) });

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        token_endpoint_auth_method: 'none', // a public client: no secret in the browser
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [`${dashboard}/signed-in`],
        post_logout_redirect_uris: [`${dashboard}/`],
      },
    ],
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['name'], email: ['email'], role: ['role'] },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => claimsOf(id) }),
    // The role (and the name) ride in the access token, which is what the API verifies.
    extraTokenClaims: async (_ctx, token) => {
      const { name, email, role } = claimsOf(token.accountId);
      return { name, email, role };
    },
    // As Keycloak does for a public client: refresh tokens without asking for offline_access.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // A first-party client: no consent screen, as an institution configures its own apps.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email offline_access');
      grant.addResourceScope(AUDIENCE, API_SCOPE);
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== AUDIENCE) throw new Provider.errors.InvalidTarget();
          return { scope: API_SCOPE, audience: AUDIENCE, accessTokenTTL: accessTokenSeconds, accessTokenFormat: 'jwt' };
        },
      },
    },
    clientBasedCORS: () => true,
    ttl: {
      AccessToken: accessTokenSeconds,
      IdToken: accessTokenSeconds,
      AuthorizationCode: 60,
      RefreshToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
  });
  const server = provider.listen(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const stop = () =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return { issuer, port, stop };
}
