// The views a new user found rough at 375 px and 1280 px (issue 24), in a real
// browser against the real server. Layout is checked with bounding boxes, not
// pixels; each view is also saved as a screenshot at both widths in
// e2e/screenshots/fixed-*.png for review. Run: `npm --prefix web run test:e2e`.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, screenshotDir, startServer } from './support.js';

const COURSE_ID = 'demo-course';
const WIDE = { width: 1280, height: 720 };
const PHONE = { width: 375, height: 812 };

let server;
let browser;
let demo;
const contexts = [];

before(async () => {
  const executablePath = chromiumPath();
  distIsBuilt();
  server = await startServer();
  mkdirSync(screenshotDir, { recursive: true });
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  const response = await fetch(`${server.baseUrl}/api/demo/users`);
  assert.equal(response.status, 200, 'GET /api/demo/users must answer 200 when the server runs with --demo');
  demo = await response.json();
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

/** A fresh tab of its own (its own session storage), at `viewport`. */
async function freshPage(viewport) {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  return context.newPage();
}

/** Sign in on whatever page is open by pasting the token, as a person would. */
async function signIn(page, user) {
  const input = page.locator('input[name="token"]');
  await input.waitFor();
  await input.fill(user.token);
  await input.press('Enter');
}

async function api(method, url, token, body) {
  const response = await fetch(`${server.baseUrl}${url}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json();
  assert.ok(response.ok, `${method} ${url} -> ${response.status} ${JSON.stringify(data)}`);
  return data;
}

const startSession = (topic) =>
  api('POST', `/api/courses/${COURSE_ID}/sessions`, demo.teacher.token, { topic, check_in_mode: 'code' });
const endSession = (id) => api('POST', `/api/sessions/${id}/end`, demo.teacher.token);

/** `fixed-<name>-<width>px.png`: the view as a person sees it, for review. */
async function shot(page, name) {
  const { width } = page.viewportSize();
  await page.screenshot({ path: path.join(screenshotDir, `fixed-${name}-${width}px.png`), fullPage: true });
}

/** Each view at both widths: `check(page, viewport)` asserts, then the screenshot is taken. */
async function atBothWidths(page, name, check, heights = {}) {
  for (const viewport of [{ ...WIDE, height: heights.wide ?? WIDE.height }, { ...PHONE, height: heights.phone ?? PHONE.height }]) {
    await page.setViewportSize(viewport);
    await check(page, viewport);
    await shot(page, name);
  }
}

async function box(locator) {
  const found = await locator.boundingBox();
  assert.ok(found, `${locator} is not on the page`);
  return found;
}

const overlaps = (a, b) =>
  a.x < b.x + b.width - 0.5 && b.x < a.x + a.width - 0.5 && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5;

test("the start form: the networks hint sits under its input, and every control is one height", async () => {
  const teacher = await freshPage(WIDE);
  await teacher.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await signIn(teacher, demo.teacher);
  await teacher.getByRole('heading', { name: 'Start a session' }).waitFor();
  await atBothWidths(teacher, 'start-form', async (page, { width }) => {
    const input = await box(page.locator('#allowed-networks'));
    const hint = await box(page.locator('#allowed-networks-hint'));
    assert.ok(!overlaps(input, hint), `at ${width} px the hint ${JSON.stringify(hint)} is drawn on the input ${JSON.stringify(input)}`);
    assert.ok(hint.y >= input.y + input.height - 0.5, `at ${width} px the hint is below the input`);
    const heights = {};
    for (const id of ['topic', 'late-after', 'max-duration', 'check-in-mode', 'code-period', 'allowed-networks']) {
      heights[id] = Math.round((await box(page.locator(`#${id}`))).height);
    }
    const distinct = new Set(Object.values(heights));
    assert.equal(distinct.size, 1, `at ${width} px the controls differ in height: ${JSON.stringify(heights)}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${width} px (overflow ${overflow} px)`);
  }, { wide: 900 });
});

let projectorUrl;
let projected; // the session on the projector
let projectorPage; // the teacher's tab showing it

test('the projector link opened signed out says why to sign in, and comes back', async () => {
  projected = await startSession('Linked lists');
  projectorUrl = `${server.baseUrl}/sessions/${projected.id}/projector`;
  const page = await freshPage(WIDE);
  await page.goto(projectorUrl);
  await page.locator('input[name="token"]').waitFor();
  await atBothWidths(page, 'projector-sign-in', async () => {
    await page
      .getByText('Sign in to show the check-in code for this session; you will come back here.')
      .waitFor({ state: 'visible' });
  });
  await page.setViewportSize(WIDE);
  await signIn(page, demo.teacher);
  await page.getByRole('heading', { name: 'Linked lists: check in now' }).waitFor();
  assert.equal(page.url(), projectorUrl, 'back on the projector after signing in');
  projectorPage = page;
});

test('the projector fits one screen from 1280×720 up and says what its count counts', async () => {
  const page = projectorPage;
  await page.locator('.projector .code[data-code]:not([data-code=""])').waitFor();
  await page.locator('.projector-qr img').waitFor();
  // A student checks in; another is marked late by the teacher: the count holds both and says so.
  const code = await page.locator('.projector .code').getAttribute('data-code');
  const [first, second] = demo.students.filter((s) => s.enrollment === 'approved');
  await api('POST', `/api/sessions/${projected.id}/check-in`, first.token, { code });
  await api('PUT', `/api/sessions/${projected.id}/records/${second.id}`, demo.teacher.token, { status: 'late' });
  const count = page.locator('.projector-count[data-present="2"]');
  await count.waitFor();
  assert.match(await count.textContent(), /^2 of \d+ here \(on time or late\)$/);
  for (const viewport of [WIDE, { width: 1280, height: 800 }, { width: 1920, height: 1080 }]) {
    await page.setViewportSize(viewport);
    const bottom = await box(count).then((b) => b.y + b.height);
    assert.ok(bottom <= viewport.height, `at ${viewport.width}×${viewport.height} the count ends at ${bottom} px, below the fold`);
    const scroll = await page.evaluate(() => document.documentElement.scrollHeight);
    assert.ok(scroll <= viewport.height, `at ${viewport.width}×${viewport.height} the view scrolls (${scroll} px high)`);
  }
  await atBothWidths(page, 'projector', async () => {});
});

test('the projector after the end says so in its heading', async () => {
  const page = projectorPage;
  await endSession(projected.id);
  await page.getByRole('heading', { name: 'Linked lists: session ended' }).waitFor();
  assert.match(await page.locator('.projector-count').textContent(), /^2 of \d+ attended \(on time or late\)$/);
  await atBothWidths(page, 'projector-ended', async () => {
    const heading = await page.getByRole('heading', { level: 1 }).textContent();
    assert.doesNotMatch(heading, /check in now/, 'the heading no longer asks to check in');
    await page.getByText('This session has ended: check-in is closed.').waitFor();
  });
});

test("a wrong code is refused in one sentence, and the code field's placeholder fits at 375 px", async () => {
  const session = await startSession('Hash tables');
  const student = demo.students.find((s) => s.enrollment === 'approved');
  const page = await freshPage(PHONE);
  await page.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await signIn(page, student);
  const input = page.getByLabel('Code shown in the room');
  await input.waitFor();
  await atBothWidths(page, 'check-in-code', async (_page, { width }) => {
    // The placeholder's text as drawn (its own font, spacing and case) against the input's inner width.
    const fit = await input.evaluate((element) => {
      const style = getComputedStyle(element, '::placeholder');
      const own = getComputedStyle(element);
      const text = style.textTransform === 'uppercase' ? element.placeholder.toUpperCase() : element.placeholder;
      const context = document.createElement('canvas').getContext('2d');
      context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const spacing = Number.parseFloat(style.letterSpacing) || 0;
      const needed = context.measureText(text).width + spacing * text.length;
      const room = element.clientWidth - Number.parseFloat(own.paddingLeft) - Number.parseFloat(own.paddingRight);
      return { text, needed, room };
    });
    assert.ok(fit.needed <= fit.room, `at ${width} px the placeholder "${fit.text}" needs ${fit.needed} px, the field has ${fit.room} px`);
  }, { phone: PHONE.height, wide: 900 });
  await page.setViewportSize(PHONE);
  await input.fill('AAAAAA');
  await page.getByRole('button', { name: 'Check in' }).click();
  const alert = page.locator('.check-in-form [role="alert"]');
  await alert.waitFor();
  assert.equal(await page.locator('[role="alert"]').count(), 1, 'one message on the page');
  const text = (await alert.textContent()).trim();
  assert.match(text, /^[^.!?()]+[.!?]$/, `one sentence, said once: "${text}"`);
  assert.match(text, /wrong or has expired/);
  await atBothWidths(page, 'wrong-code', async () => {}, { wide: 900 });
  await endSession(session.id);
});

test('ending a session asks first; keeping it running changes nothing', async () => {
  const session = await startSession('Graphs');
  const status = async () => (await api('GET', `/api/sessions/${session.id}`, demo.teacher.token)).status;
  const teacher = await freshPage({ ...WIDE, height: 900 });
  await teacher.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await signIn(teacher, demo.teacher);
  const panel = teacher.locator('.live-session', { hasText: 'Graphs' });
  await panel.waitFor();
  await panel.getByRole('button', { name: 'End session' }).click();
  await panel.getByText('End this session for everyone?').waitFor();
  assert.equal(await status(), 'active', 'one click ends nothing');
  await atBothWidths(teacher, 'end-confirm', async () => {
    await panel.getByRole('button', { name: 'Yes, end the session' }).waitFor();
  }, { wide: 900 });
  await teacher.setViewportSize({ ...WIDE, height: 900 });
  await panel.getByRole('button', { name: 'Keep it running' }).click();
  await panel.getByRole('button', { name: 'End session' }).click();
  await panel.getByRole('button', { name: 'Yes, end the session' }).click();
  await teacher.locator('.ended-summary').waitFor();
  assert.equal(await status(), 'ended', 'the confirmed end ended it');
});
