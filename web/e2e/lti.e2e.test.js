// LTI 1.3 launches in Chromium against a local platform (e2e/lti-platform.js) and the real
// server: the instructor launches the tool inside the LMS's iframe (a page of another site:
// http://localhost:PORT framing http://127.0.0.1:PORT) and lands on the course page signed in;
// the roster came from the platform's NRPS (two pages); a learner opens it in a new window
// and lands on the same course as a student. No token in any URL the browser loaded.
// Run: `npm --prefix web run test:e2e` (after `npm run build`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startLtiPlatform } from './lti-platform.js';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, freePort, screenshotDir, serverBinary, startServer } from './support.js';

let browser;
let platform;
let server;
const loaded = [];
const pageErrors = [];

before(async () => {
  const executablePath = chromiumPath();
  distIsBuilt();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'attendance-live-lti-e2e-'));
  const port = await freePort();
  const toolUrl = `http://127.0.0.1:${port}`;
  platform = await startLtiPlatform({ toolUrl });
  const env = { ...process.env, DATABASE_URL: `sqlite+aiosqlite:///${path.join(dir, 't.db')}`, PUBLIC_URL: toolUrl };
  delete env.REDIS_URL;
  const registered = spawnSync(
    serverBinary(),
    [
      'lti', 'register',
      '--issuer', platform.url,
      '--client-id', platform.clientId,
      '--deployment-id', platform.deploymentId,
      '--auth-url', `${platform.url}/auth`,
      '--token-url', `${platform.url}/token`,
      '--jwks-url', `${platform.url}/jwks`,
    ],
    { cwd: dir, env, encoding: 'utf8' },
  );
  assert.equal(registered.status, 0, registered.stderr);
  server = await startServer({ dir, port, demo: false, env: { PUBLIC_URL: toolUrl } });
  mkdirSync(screenshotDir, { recursive: true });
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
    await platform?.close();
  }
});

async function open() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('request', (request) => loaded.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { context, page };
}

test('an instructor launches the tool inside the LMS iframe and lands on the course, signed in', async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${platform.url}/course?user=teacher`);
    const frame = page.frameLocator('#tool');
    await frame.getByRole('heading', { name: 'CHEM201: Chemistry 201' }).waitFor({ timeout: 20_000 });
    const inner = page.frames().find((f) => f.url().startsWith(`${server.baseUrl}/courses/`));
    assert.ok(inner, `the iframe shows the course page: ${page.frames().map((f) => f.url())}`);
    // The page is signed in, though this browser blocks storage in a third-party frame (Chromium's
    // incognito contexts do): the token came in the fragment, was taken out of the address at once,
    // and lives in the page's memory.
    assert.equal(new URL(inner.url()).hash, '');
    // The roster came from the platform (NRPS, two pages): its three learners, the instructor not.
    await frame.getByRole('link', { name: /roster/i }).first().click();
    await frame.getByTestId('roster-counts').getByText('3 on the roster', { exact: false }).waitFor({ timeout: 20_000 });
    for (const name of ['Ann Learner', 'Ben Learner', 'Cy Learner']) {
      await frame.getByText(name).first().waitFor();
    }
    // A learner added in the LMS arrives with "Sync from LMS", which says what it changed.
    platform.people.dan = { name: 'Dan Learner', roles: ['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner'] };
    await frame.getByRole('button', { name: 'Sync from LMS' }).click();
    await frame.getByTestId('roster-counts').getByText('4 on the roster', { exact: false }).waitFor();
    await frame.getByTestId('lms-last-sync').getByText('1 added', { exact: false }).waitFor();
    await frame.getByText('Dan Learner').first().waitFor();
    assert.deepEqual(platform.assertionErrors, []);
    await page.screenshot({ path: path.join(screenshotDir, 'lti-iframe.png') });
  } finally {
    await context.close();
  }
});

test('a learner opens the tool in a new window and lands on the same course as a student', async () => {
  const { context, page } = await open();
  try {
    await page.goto(`${platform.url}/course?user=ann&window=1`);
    const [tool] = await Promise.all([context.waitForEvent('page'), page.click('#open-tool')]);
    tool.on('request', (request) => loaded.push(request.url()));
    await tool.getByRole('heading', { name: 'CHEM201: Chemistry 201' }).waitFor({ timeout: 20_000 });
    assert.match(new URL(tool.url()).pathname, /^\/courses\/lti-[0-9a-f]{32}$/);
    await tool.screenshot({ path: path.join(screenshotDir, 'lti-window.png') });
  } finally {
    await context.close();
  }
});

test('a teaching assistant launches inside the iframe and runs the course beside the instructor', async () => {
  const { context, page } = await open();
  try {
    platform.people.tim = {
      name: 'Tim Assistant',
      roles: [
        'http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor',
        'http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant',
      ],
    };
    await page.goto(`${platform.url}/course?user=tim`);
    const frame = page.frameLocator('#tool');
    await frame.getByRole('heading', { name: 'CHEM201: Chemistry 201' }).waitFor({ timeout: 20_000 });
    // A co-manager, not a refusal: the roster is the TA's to run too.
    await frame.getByRole('link', { name: /roster/i }).first().click();
    await frame.getByTestId('roster-counts').getByText('4 on the roster', { exact: false }).waitFor({ timeout: 20_000 });
    const teachers = frame.getByTestId('co-teachers');
    await teachers.getByText('Tess Teacher', { exact: false }).getByText('Teacher (owner)', { exact: false }).waitFor();
    await teachers.getByText('· Teaching assistant', { exact: false }).waitFor();
    await page.screenshot({ path: path.join(screenshotDir, 'lti-iframe-ta.png') });
  } finally {
    await context.close();
  }
});

test('no session token ever appeared in a URL, and no page error', () => {
  const tokenLike = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/;
  const leaked = loaded.filter((url) => url.startsWith(server.baseUrl) && tokenLike.test(url));
  assert.deepEqual(leaked, []);
  assert.deepEqual(pageErrors, []);
});
