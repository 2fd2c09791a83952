// Sign-in for real: the dashboard against panva's `oidc-provider` (a certified
// OpenID Provider, e2e/oidc-provider.js) and the real server, in Chromium. A
// teacher signs in at the provider's login page and starts a session; a student
// in another browser context scans the QR link signed out, signs in and is
// checked in; the teacher's access token renews (40 s lifetimes) while the live
// socket keeps delivering; the teacher signs out, at the provider too. Then: a
// provider that is down at start-up, a wrong client id, a cancelled sign-in.
// Run: `npm --prefix web run test:e2e` (after `npm run build`).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { AUDIENCE, CLIENT_ID, startProvider } from './oidc-provider.js';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, freePort, screenshotDir, startServer } from './support.js';

const DISPLAY_NAME = 'Test University';
const COURSE = { id: 'oidc-101', code: 'OIDC-101', title: 'Signing in for real' };
const SIGN_IN_BUTTON = { name: `Sign in with ${DISPLAY_NAME}` };

let browser;
let provider;
let server;
const cleanups = [];
const consoleErrors = [];
// Origins of the providers in play (and of one that is down): their pages and resources are not ours.
const providerOrigins = [];

function oidcEnv(issuer, clientId = CLIENT_ID) {
  return {
    OIDC_ISSUER: issuer,
    OIDC_CLIENT_ID: clientId,
    OIDC_SCOPES: 'openid profile email attendance',
    OIDC_AUDIENCE: AUDIENCE,
    OIDC_DISPLAY_NAME: DISPLAY_NAME,
  };
}

async function open(key, viewport) {
  const context = await browser.newContext({ viewport });
  cleanups.push(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // The provider's own pages (its fonts from the internet, its favicon, its error page) and requests
    // to a provider that is down are not the dashboard's errors.
    const where = message.location().url || page.url();
    if (providerOrigins.some((origin) => where.startsWith(origin) || page.url().startsWith(origin))) return;
    consoleErrors.push(`[${key}] console.error: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`[${key}] uncaught: ${error.message}`));
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
}

/** At the provider's own login page: any password works for its accounts. */
async function logInAtProvider(page, login, at = provider) {
  await page.waitForURL((url) => url.href.startsWith(at.issuer));
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('correct horse battery staple');
  await page.locator('button[type="submit"]').click();
}

/** The access token oidc-client-ts keeps in the tab's sessionStorage. */
function accessToken(page) {
  return page.evaluate(() => {
    const key = Object.keys(window.sessionStorage).find((k) => k.startsWith('oidc.user:'));
    return key ? JSON.parse(window.sessionStorage.getItem(key)).access_token : null;
  });
}

async function api(pathname, token, { method = 'GET', body } = {}) {
  const response = await fetch(`${server.baseUrl}${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${pathname}: ${response.status} ${text}`);
  return JSON.parse(text);
}

before(async () => {
  const executablePath = chromiumPath();
  distIsBuilt();
  mkdirSync(screenshotDir, { recursive: true });
  const port = await freePort();
  provider = await startProvider({ dashboard: `http://127.0.0.1:${port}` });
  providerOrigins.push(provider.issuer);
  server = await startServer({ port, demo: false, env: oidcEnv(provider.issuer) });
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await browser?.close();
  await server?.stop();
  await provider?.stop();
});

const people = {};

test('the config tells the dashboard where to sign in, and never a secret', async () => {
  const config = await (await fetch(`${server.baseUrl}/api/config`)).json();
  assert.deepEqual(
    { ...config.sign_in, help: undefined },
    {
      mode: 'oidc',
      issuer: provider.issuer,
      client_id: CLIENT_ID,
      scopes: 'openid profile email attendance',
      audience: AUDIENCE,
      display_name: DISPLAY_NAME,
      token_form: false,
      demo: false,
      help: undefined,
    },
  );
  const ready = await (await fetch(`${server.baseUrl}/readyz`)).json();
  assert.equal(ready.status, 'ready');
  assert.match(ready.oidc, /^ok /);
});

test('signed out → sign in as a teacher at the provider → back on the dashboard; start a session', async () => {
  // The sign-in page at phone width: the provider's button, and no token box.
  const phone = await open('phone', { width: 375, height: 812 });
  await phone.page.goto(`${server.baseUrl}/`);
  await phone.page.getByRole('button', SIGN_IN_BUTTON).waitFor();
  assert.equal(await phone.page.locator('input[name="token"]').count(), 0, 'no paste-a-token box outside --demo');
  await shot(phone.page, 'signin-page-375px');
  await phone.page.getByRole('button', SIGN_IN_BUTTON).click();
  await phone.page.waitForURL((url) => url.href.startsWith(provider.issuer));
  await phone.page.locator('input[name="login"]').waitFor();
  await shot(phone.page, 'signin-provider-375px');

  const teacher = await open('teacher', { width: 1280, height: 900 });
  people.teacher = teacher;
  const sockets = [];
  teacher.page.on('websocket', (ws) => {
    const frames = [];
    ws.on('framereceived', (frame) => frames.push(String(frame.payload)));
    sockets.push({ ws, frames });
  });
  teacher.sockets = sockets;
  await teacher.page.goto(`${server.baseUrl}/`);
  await teacher.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
  await teacher.page.getByRole('button', SIGN_IN_BUTTON).waitFor();
  await shot(teacher.page, 'signin-page-desktop');
  await teacher.page.getByRole('button', SIGN_IN_BUTTON).click();
  await teacher.page.locator('input[name="login"]').waitFor();
  assert.ok(teacher.page.url().startsWith(provider.issuer), 'at the provider');
  await shot(teacher.page, 'signin-provider-desktop');
  await logInAtProvider(teacher.page, 'teacher-ada');
  await teacher.page.getByRole('heading', { name: 'Your courses' }).waitFor();
  assert.equal(new URL(teacher.page.url()).pathname, '/', 'back on the page she started from');
  await teacher.page.getByText('Signed in as').waitFor();
  assert.match(await teacher.page.locator('.who').textContent(), /Ada Lovelace \(teacher\)/);

  // The token is the provider's JWT for our API, with the role claim, kept in this tab's sessionStorage.
  const token = await accessToken(teacher.page);
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.equal(claims.iss, provider.issuer);
  assert.equal(claims.aud, AUDIENCE);
  assert.equal(claims.role, 'teacher');

  // The course and its student are set up through the API with her token (the roster page is another issue's).
  await api('/api/courses', token, { method: 'POST', body: COURSE });
  await api(`/api/courses/${COURSE.id}/enrollments/student-sam`, token, {
    method: 'PUT',
    body: { status: 'approved', name: 'Sam Student' },
  });

  await teacher.page.reload(); // a reload keeps her signed in (sessionStorage, within the token's life)
  await teacher.page.getByRole('link', { name: new RegExp(COURSE.code) }).click();
  await teacher.page.getByLabel('Topic (optional)').fill('Signed in with OIDC');
  await teacher.page.getByLabel('New code every (seconds)').fill('300');
  await teacher.page.getByRole('button', { name: 'Start session' }).click();
  await teacher.page.locator('.live-session').waitFor({ timeout: 10_000 });
  await teacher.page.getByText('Loading the roster…').waitFor({ state: 'detached', timeout: 10_000 });
  await shot(teacher.page, 'signed-in-dashboard-desktop');
});

test("the teacher's token renews during the session; the same socket keeps delivering", async () => {
  const { page, sockets } = people.teacher;
  const socketsBefore = sockets.filter((s) => s.ws.url().includes('/socket.io/')).length;
  assert.ok(socketsBefore >= 1, 'the course page has a live socket');
  const before = await accessToken(page);
  // RENEW_AHEAD_SECONDS (30) before the 40 s token ends: within about 10 s of signing in.
  await page.locator('main[data-renewals]:not([data-renewals="0"])').waitFor({ timeout: 45_000 });
  const after = await accessToken(page);
  assert.notEqual(after, before, 'a new access token');
  const live = sockets.filter((s) => s.ws.url().includes('/socket.io/') && !s.ws.isClosed());
  assert.equal(live.length, 1, 'one live socket');
  const refreshed = () => live[0].frames.some((f) => f.includes('"tokenRefreshed"'));
  for (let i = 0; i < 100 && !refreshed(); i += 1) await page.waitForTimeout(100);
  assert.ok(refreshed(), 'the server answered refreshToken with tokenRefreshed on the same socket');
  assert.equal(
    sockets.filter((s) => s.ws.url().includes('/socket.io/')).length,
    socketsBefore,
    'no new socket: the renewal did not reconnect',
  );
});

test('a student scans the QR link signed out, signs in at the provider, and is checked in', async () => {
  const { page: teacher, sockets } = people.teacher;
  await teacher.getByRole('link', { name: 'Open the projector view' }).click();
  const qr = teacher.locator('.projector-qr img');
  await qr.waitFor();
  const link = await qr.getAttribute('data-url');
  assert.match(link, /\/check-in\/[0-9a-f]{32}\?code=/);

  const student = await open('student', { width: 375, height: 812 });
  await student.page.goto(link);
  await student.page.getByText('Sign in to check in; you will come straight back to the check-in.').waitFor();
  await student.page.getByRole('button', SIGN_IN_BUTTON).click();
  await logInAtProvider(student.page, 'student-sam');
  await student.page.getByText('You are checked in. You can close this page.').waitFor({ timeout: 15_000 });
  assert.equal(new URL(student.page.url()).pathname, new URL(link).pathname, 'back at the check-in page');
  await student.page.locator('.my-status [data-status="present"]').waitFor();
  await shot(student.page, 'signed-in-check-in-375px');
  // The teacher's projector counts it live, over the socket that lived through the renewal.
  await teacher.locator('.projector-count[data-present="1"]').waitFor({ timeout: 10_000 });
  assert.equal(sockets.filter((s) => s.ws.url().includes('/socket.io/') && !s.ws.isClosed()).length, 1);

  await student.page.goto(`${server.baseUrl}/`);
  await student.page.getByRole('heading', { name: 'Your courses' }).waitFor();
  await shot(student.page, 'signed-in-dashboard-375px');
  people.student = student;
});

test("signing out ends the dashboard's session and the provider's", async () => {
  const { page } = people.teacher;
  await page.getByRole('link', { name: 'Leave projector view' }).click();
  await page.getByRole('button', { name: 'Sign out' }).click();
  // The provider's end_session_endpoint asks to confirm (oidc-provider's own page).
  await page.waitForURL((url) => url.href.startsWith(provider.issuer));
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.getByRole('button', SIGN_IN_BUTTON).waitFor({ timeout: 10_000 });
  assert.equal(new URL(page.url()).origin, server.baseUrl);
  assert.equal(await accessToken(page), null, 'no token left in the tab');
  // The provider's session is over too: signing in asks for the login again.
  await page.getByRole('button', SIGN_IN_BUTTON).click();
  await page.locator('input[name="login"]').waitFor();
});

test('a cancelled sign-in comes back with the reason in plain words', async () => {
  const { page } = await open('canceller', { width: 800, height: 800 });
  await page.goto(`${server.baseUrl}/`);
  await page.getByRole('button', SIGN_IN_BUTTON).click();
  await page.locator('input[name="login"]').waitFor();
  await page.getByRole('link', { name: '[ Cancel ]' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 10_000 });
  assert.match(await alert.textContent(), /Sign-in was cancelled or refused at Test University: “End-User aborted interaction”/);
  assert.equal(new URL(page.url()).pathname, '/');
});

test('a wrong client id: the provider says so in plain words, and nobody is signed in', async () => {
  const port = await freePort();
  const wrong = await startServer({ port, demo: false, env: oidcEnv(provider.issuer, 'no-such-client') });
  cleanups.push(() => wrong.stop());
  const { page } = await open('wrong-client', { width: 800, height: 800 });
  await page.goto(`${wrong.baseUrl}/`);
  await page.getByRole('button', SIGN_IN_BUTTON).click();
  await page.waitForURL((url) => url.href.startsWith(provider.issuer));
  const text = await page.locator('body').textContent();
  assert.match(text, /invalid_client/);
  assert.match(text, /client is invalid/);
  await shot(page, 'signin-wrong-client-desktop');
});

test('a token the server refuses (a wrong audience) is shown on the sign-in page, with no trip to the provider', async () => {
  const port = await freePort();
  const other = await startProvider({ dashboard: `http://127.0.0.1:${port}` });
  providerOrigins.push(other.issuer);
  cleanups.push(() => other.stop());
  const strict = await startServer({
    port,
    demo: false,
    env: { ...oidcEnv(other.issuer), JWT_AUDIENCE: 'https://some-other-api.test' },
  });
  cleanups.push(() => strict.stop());
  const { page } = await open('refused', { width: 800, height: 800 });
  const mark = consoleErrors.length;
  await page.goto(`${strict.baseUrl}/`);
  await page.getByRole('button', SIGN_IN_BUTTON).click();
  await logInAtProvider(page, 'student-sam', other);
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 10_000 });
  assert.match(await alert.textContent(), /^That token was refused: Invalid token/);
  assert.equal(new URL(page.url()).origin, strict.baseUrl, 'still on the dashboard, not at the provider');
  await page.getByRole('button', SIGN_IN_BUTTON).waitFor();
  // The browser logs the refused request itself: exactly one, /api/me's 401.
  const during = consoleErrors.splice(mark);
  assert.equal(during.filter((line) => /401 \(Unauthorized\).*\/api\/me/.test(line)).length, 1, during.join('\n'));
  consoleErrors.push(...during.filter((line) => !/401 \(Unauthorized\).*\/api\/me/.test(line)));
});

test('a provider that is down at start-up: a clear message on the sign-in page, and /readyz says so', async () => {
  const deadPort = await freePort(); // nothing listens there
  providerOrigins.push(`http://127.0.0.1:${deadPort}`);
  const port = await freePort();
  const down = await startServer({ port, demo: false, env: oidcEnv(`http://127.0.0.1:${deadPort}`) });
  cleanups.push(() => down.stop());
  const readyz = await fetch(`${down.baseUrl}/readyz`);
  assert.equal(readyz.status, 503);
  const body = await readyz.json();
  assert.equal(body.status, 'unavailable');
  assert.match(body.oidc, /^(down|not fetched yet)/);
  assert.match(body.oidc, new RegExp(`OIDC_ISSUER http://127.0.0.1:${deadPort}`));

  const { page } = await open('provider-down', { width: 375, height: 812 });
  const mark = consoleErrors.length;
  await page.goto(`${down.baseUrl}/`);
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 10_000 });
  assert.match(await alert.textContent(), /Test University \(http:\/\/127\.0\.0\.1:\d+\) cannot be reached right now, so nobody can sign in/);
  await page.getByRole('button', { name: 'Try again' }).waitFor();
  await shot(page, 'signin-provider-down-375px');
  // The browser logs the refused connection to the provider itself; those lines are expected here.
  const during = consoleErrors.splice(mark);
  consoleErrors.push(...during.filter((line) => !/ERR_CONNECTION_REFUSED|Failed to fetch|MetadataService/.test(line)));
});

test('when renewal fails, the person sees "Your sign-in has expired" with a button, not a broken page', async () => {
  const port = await freePort();
  // 15 s tokens: renewed about every second while the provider answers.
  const brief = await startProvider({ dashboard: `http://127.0.0.1:${port}`, accessTokenSeconds: 15 });
  providerOrigins.push(brief.issuer);
  let briefRunning = true;
  cleanups.push(() => (briefRunning ? brief.stop() : undefined));
  const expiring = await startServer({ port, demo: false, env: oidcEnv(brief.issuer) });
  cleanups.push(() => expiring.stop());
  const { page } = await open('expiring', { width: 800, height: 800 });
  await page.goto(`${expiring.baseUrl}/`);
  await page.getByRole('button', SIGN_IN_BUTTON).click();
  await logInAtProvider(page, 'student-sam', brief);
  await page.getByRole('heading', { name: 'Your courses' }).waitFor();
  await brief.stop(); // from now on every renewal fails
  briefRunning = false;
  await page.getByRole('heading', { name: 'Your sign-in has expired' }).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Sign in again' }).waitFor();
  assert.equal(await page.getByText('Signed in as').count(), 0, 'no signed-in header over an expired sign-in');
  await shot(page, 'signin-expired-desktop');
});

test('no page logged an unexpected console error', () => {
  assert.deepEqual(consoleErrors, []);
});
