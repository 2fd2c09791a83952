// A local LTI 1.3 platform for the browser test: a real HTTP server with its own RSA key
// and JWKS, an authorization endpoint answering the login initiation with the
// auto-submitting id_token form, a token endpoint that checks the tool's client assertion,
// NRPS (two pages) and AGS, and a "course page" that embeds the tool in an iframe or opens
// it in a new window. Its origin is http://localhost:PORT, another site than the tool's
// http://127.0.0.1:PORT, so the iframe is a third-party one as in a real LMS.
// Signing uses node:crypto only (RS256 = RSASSA-PKCS1-v1_5 with SHA-256).
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import http from 'node:http';

const CLAIM = 'https://purl.imsglobal.org/spec/lti/claim/';
export const INSTRUCTOR = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor';
export const LEARNER = 'http://purl.imsglobal.org/vocab/lis/v2/membership#Learner';

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const escape = (text) => String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function signJwt(claims, privateKey, kid) {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

async function verifyJwt(token, jwksUrl) {
  const [header, payload, signature] = token.split('.');
  const { kid } = JSON.parse(Buffer.from(header, 'base64url'));
  const { keys } = await (await fetch(jwksUrl)).json();
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error(`no key ${kid} in the tool's JWKS`);
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signature, 'base64url'));
  if (!ok) throw new Error('bad signature');
  return JSON.parse(Buffer.from(payload, 'base64url'));
}

export async function startLtiPlatform({ toolUrl }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'e2e-platform-key';
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const platform = {
    clientId: 'e2e-client',
    deploymentId: 'e2e-deployment',
    context: { id: 'e2e-ctx', title: 'Chemistry 201', label: 'CHEM201' },
    people: {
      teacher: { name: 'Tess Teacher', roles: [INSTRUCTOR] },
      ann: { name: 'Ann Learner', roles: [LEARNER] },
      ben: { name: 'Ben Learner', roles: [LEARNER] },
      cy: { name: 'Cy Learner', roles: [LEARNER] },
    },
    tokens: new Map(),
    assertionErrors: [],
    scores: [],
    lineitems: [],
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, platform.url);
    const send = (status, body, type = 'application/json', headers = {}) => {
      res.writeHead(status, { 'Content-Type': type, ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString();
    const bearer = (req.headers.authorization || '').replace(/^Bearer /, '');
    const scope = platform.tokens.get(bearer) || '';
    if (url.pathname === '/jwks') return send(200, { keys: [jwk] });
    if (url.pathname === '/course') {
      // The LMS's course page: the tool in an iframe, or a link that opens it in a new window.
      const user = url.searchParams.get('user');
      const login = `${toolUrl}/lti/login?${new URLSearchParams({
        iss: platform.url,
        login_hint: user,
        target_link_uri: `${toolUrl}/lti/launch`,
        lti_message_hint: 'resource-1',
        client_id: platform.clientId,
        lti_deployment_id: platform.deploymentId,
      })}`;
      const tool = url.searchParams.get('window')
        ? `<a id="open-tool" href="${escape(login)}" target="_blank">Open attendance</a>`
        : `<iframe id="tool" title="attendance-live" src="${escape(login)}" style="width:1100px;height:800px"></iframe>`;
      return send(200, `<!doctype html><html><head><title>LMS course</title></head><body><h1>LMS: ${escape(platform.context.title)}</h1>${tool}</body></html>`, 'text/html');
    }
    if (url.pathname === '/auth') {
      const q = Object.fromEntries(url.searchParams);
      const person = platform.people[q.login_hint];
      if (q.client_id !== platform.clientId || q.response_mode !== 'form_post' || !person || !q.nonce) {
        return send(400, `bad authorization request ${JSON.stringify(q)}`, 'text/plain');
      }
      const now = Math.floor(Date.now() / 1000);
      const idToken = signJwt(
        {
          iss: platform.url,
          aud: platform.clientId,
          azp: platform.clientId,
          sub: q.login_hint,
          iat: now,
          exp: now + 300,
          nonce: q.nonce,
          name: person.name,
          [`${CLAIM}deployment_id`]: platform.deploymentId,
          [`${CLAIM}message_type`]: 'LtiResourceLinkRequest',
          [`${CLAIM}version`]: '1.3.0',
          [`${CLAIM}roles`]: person.roles,
          [`${CLAIM}target_link_uri`]: `${toolUrl}/lti/launch`,
          [`${CLAIM}resource_link`]: { id: 'resource-1' },
          [`${CLAIM}context`]: platform.context,
          'https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice': {
            context_memberships_url: `${platform.url}/nrps`,
            service_versions: ['2.0'],
          },
        },
        privateKey,
        kid,
      );
      return send(
        200,
        `<!doctype html><html><body><form id="f" method="post" action="${escape(q.redirect_uri)}">` +
          `<input type="hidden" name="id_token" value="${idToken}"><input type="hidden" name="state" value="${escape(q.state)}">` +
          '</form><script>document.getElementById("f").submit()</script></body></html>',
        'text/html',
      );
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const form = Object.fromEntries(new URLSearchParams(body));
      try {
        const claims = await verifyJwt(form.client_assertion, `${toolUrl}/lti/jwks.json`);
        if (claims.iss !== platform.clientId || claims.aud !== `${platform.url}/token`) throw new Error('iss/aud');
      } catch (error) {
        platform.assertionErrors.push(String(error));
        return send(401, { error: 'invalid_client' });
      }
      const token = randomBytes(12).toString('hex');
      platform.tokens.set(token, form.scope);
      return send(200, { access_token: token, token_type: 'Bearer', expires_in: 3600 });
    }
    if (url.pathname === '/nrps') {
      if (!scope.includes('contextmembership')) return send(401, { error: 'scope' });
      const members = Object.entries(platform.people).map(([sub, p]) => ({ user_id: sub, name: p.name, roles: p.roles, status: 'Active' }));
      const page = Number(url.searchParams.get('page') || '1');
      const headers = page * 2 < members.length ? { Link: `<${platform.url}/nrps?page=${page + 1}>; rel="next"` } : {};
      return send(200, { id: `${platform.url}/nrps`, members: members.slice((page - 1) * 2, page * 2) }, 'application/vnd.ims.lti-nrps.v2.membershipcontainer+json', headers);
    }
    return send(404, { error: 'not found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  platform.url = `http://localhost:${server.address().port}`;
  platform.close = () => new Promise((resolve) => server.close(resolve));
  return platform;
}
