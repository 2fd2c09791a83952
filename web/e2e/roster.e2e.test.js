// Courses and rosters in a real browser against the real server: a teacher creates a course,
// imports a 300-row CSV (3 bad rows seen in the preview, fixed, imported), creates a join
// link; a student opens the link, signs in, shows up live as pending on the teacher's page,
// is approved, and sees the course's next session start, all without reloading.
// Run: `npm --prefix web run test:e2e` (after `npm run build`).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, screenshotDir, startServer } from './support.js';

const STUDENT = { id: 'new-student-7', name: 'Nadia Newcomer', email: 'nadia@example.edu' };
const TOPIC = 'E2E: first lecture after joining';

let server;
let browser;
let demo;
let teacher;
let student;
let courseId;
let joinLink;
const consoleErrors = [];

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

/** An HS256 token for a user the demo does not know, signed with the server's secret. */
function mintToken(secret, { id, name, email, role = 'student' }) {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ sub: id, name, email, role, iat: now, exp: now + 3600 }));
  const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

async function openPage(key, viewport) {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`[${key}] console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`[${key}] uncaught: ${error.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
}

async function signInWithToken(page, token) {
  await page.locator('input[name="token"]').waitFor();
  await page.locator('input[name="token"]').fill(token);
  await page.keyboard.press('Enter');
}

/** 300 students; `bad` puts a mistake on three of them (lines 51, 121 and 201 of the file). */
function rosterCsv({ bad }) {
  const lines = ['User ID;Email;Full name;Status'];
  for (let i = 1; i <= 300; i += 1) {
    let row = [`stu-${String(i).padStart(3, '0')}`, `student${i}@example.edu`, `Student ${i}`, 'approved'];
    if (bad && i === 50) row = [row[0], 'not-an-email', row[2], row[3]];
    if (bad && i === 120) row = [row[0], row[1], row[2], 'enrolled'];
    if (bad && i === 200) row = ['stu-001', 'dup@example.edu', 'Duplicate', 'approved'];
    lines.push(row.join(';'));
  }
  return `\ufeff${lines.join('\r\n')}\r\n`;
}

before(async () => {
  const executablePath = chromiumPath();
  distIsBuilt();
  server = await startServer();
  mkdirSync(screenshotDir, { recursive: true });
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  const response = await fetch(`${server.baseUrl}/api/demo/users`);
  assert.equal(response.status, 200);
  demo = await response.json();
  teacher = await openPage('teacher', { width: 1280, height: 900 });
  student = await openPage('student', { width: 375, height: 812 });
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

test('a teacher creates a course and lands on its roster', async () => {
  await teacher.goto(`${server.baseUrl}/`);
  await signInWithToken(teacher, demo.teacher.token);
  await teacher.getByRole('heading', { name: 'Your courses' }).waitFor();
  await teacher.getByText('New course').click();
  await teacher.getByLabel('Code').fill('E2E-300');
  await teacher.getByLabel('Title').fill('Rosters at scale');
  await teacher.getByRole('button', { name: 'Create course' }).click();
  await teacher.getByRole('heading', { name: 'Roster: E2E-300' }).waitFor();
  const match = /\/courses\/([^/]+)\/roster$/.exec(new URL(teacher.url()).pathname);
  assert.ok(match, `the roster page's address names the course: ${teacher.url()}`);
  courseId = decodeURIComponent(match[1]);
  await teacher.getByTestId('roster-counts').getByText('0 on the roster').waitFor();
  await teacher.evaluate(() => {
    window.__notReloaded = true;
  });
});

test('the import preview lists the 3 bad rows with their lines; the fixed file imports 300', async () => {
  const file = teacher.getByLabel('CSV file');
  await file.setInputFiles({ name: 'roster.csv', mimeType: 'text/csv', buffer: Buffer.from(rosterCsv({ bad: true })) });
  const preview = teacher.getByTestId('import-preview');
  await preview.getByText('3 bad rows', { exact: false }).waitFor();
  const errors = await preview.locator('.import-errors li').allTextContents();
  assert.deepEqual(
    errors.map((e) => e.split(':')[0]),
    ['Line 51', 'Line 121', 'Line 201'],
    `the bad rows by line: ${errors.join(' | ')}`,
  );
  assert.match(errors[0], /not-an-email/);
  assert.match(errors[1], /'enrolled' is not one of/);
  assert.match(errors[2], /the same student as line 2/);
  assert.equal(await preview.getByRole('button', { name: /^Import/ }).count(), 0, 'no import while rows are bad');
  await shot(teacher, 'roster-import-preview-errors-1280px');
  // nothing was written
  await teacher.getByTestId('roster-counts').getByText('0 on the roster').waitFor();

  await file.setInputFiles({ name: 'roster-fixed.csv', mimeType: 'text/csv', buffer: Buffer.from(rosterCsv({ bad: false })) });
  await preview.getByText('300 to add', { exact: false }).waitFor();
  await preview.getByRole('button', { name: 'Import 300 changes' }).click();
  await teacher.getByTestId('import-done').getByText('Imported: 300 added').waitFor();
  await teacher.getByTestId('roster-counts').getByText('300 on the roster · 300 approved').waitFor();
  // search narrows the table
  await teacher.getByLabel('Search').fill('student299@');
  await teacher.locator('.roster-table tbody tr').first().waitFor();
  assert.equal(await teacher.locator('.roster-table tbody tr').count(), 1);
  await teacher.getByLabel('Search').fill('');
});

test('the teacher creates a join link with a QR code and copies it', async () => {
  await teacher.getByRole('button', { name: 'Create join link' }).click();
  const code = (await teacher.getByTestId('join-code').textContent()).trim();
  assert.match(code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/);
  joinLink = await teacher.getByRole('textbox', { name: 'Join link' }).inputValue();
  assert.equal(joinLink, `${server.baseUrl}/join/${code}`);
  await teacher.getByRole('img', { name: /QR code of the join link/ }).waitFor();
  await teacher.getByRole('button', { name: 'Copy link' }).click();
  await teacher.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await teacher.evaluate(() => navigator.clipboard.readText()), joinLink);
  await shot(teacher, 'roster-1280px');
  await teacher.setViewportSize({ width: 375, height: 812 });
  const overflow = await teacher.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the roster page fits 375 px (overflow ${overflow}px)`);
  await shot(teacher, 'roster-375px');
  await teacher.setViewportSize({ width: 1280, height: 900 });
});

test('a student opens the link, signs in, and shows up pending on the teacher page at once', async () => {
  await student.goto(joinLink);
  await student.getByText('Sign in to join the course').waitFor();
  await signInWithToken(student, mintToken(server.secret, STUDENT));
  await student.locator('[data-join-status="pending"]').waitFor();
  await student.evaluate(() => {
    window.__notReloaded = true;
  });
  await shot(student, 'join-pending-375px');
  const request = teacher.locator(`.requests li[data-user-id="${STUDENT.id}"]`);
  await request.waitFor();
  assert.match(await request.textContent(), new RegExp(STUDENT.name));
  await teacher.getByTestId('roster-news').getByText(`${STUDENT.name} asked to join`).waitFor();
  await teacher.getByTestId('roster-counts').getByText('301 on the roster · 300 approved · 1 pending').waitFor();
  await teacher.screenshot({ path: path.join(screenshotDir, 'roster-join-request-1280px.png') });
  assert.equal(await teacher.evaluate(() => window.__notReloaded), true, 'the teacher page did not reload');
});

test('approved, the student sees the course and its next session start without reloading', async () => {
  await teacher.locator(`.requests li[data-user-id="${STUDENT.id}"]`).getByRole('button', { name: 'Approve' }).click();
  await teacher.getByTestId('roster-counts').getByText('301 on the roster · 301 approved').waitFor();
  await student.locator('[data-join-status="approved"]').waitFor();
  await student.getByRole('heading', { name: 'Course Dashboard' }).waitFor();
  await student.locator('.no-sessions').waitFor();

  const started = await fetch(`${server.baseUrl}/api/courses/${encodeURIComponent(courseId)}/sessions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${demo.teacher.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ topic: TOPIC }),
  });
  assert.equal(started.status, 201, await started.text());
  await student.locator('.session-card').getByRole('heading', { name: TOPIC }).waitFor({ timeout: 10_000 });
  assert.equal(await student.evaluate(() => window.__notReloaded), true, 'the student page did not reload');
  await shot(student, 'join-approved-live-session-375px');
  await student.getByRole('button', { name: 'Check in' }).click();
  await student.locator('.my-status [data-status="present"]').waitFor();
});

test('the teacher adds a TA, who runs the roster too and sees the next join request live', async () => {
  const TA = { id: 'ta-e2e-1', name: 'Tara Assistant', email: 'tara@example.edu' };
  const panel = teacher.locator('section[aria-labelledby="co-teachers-title"]');
  await panel.getByLabel('User id', { exact: true }).fill(TA.id);
  await panel.getByLabel('Name (optional)').fill(TA.name);
  await panel.getByLabel('Role').selectOption('ta');
  await panel.getByRole('button', { name: 'Add', exact: true }).click();
  await panel.getByText(`${TA.name} is a teaching assistant now.`).waitFor();
  await panel.getByTestId('co-teachers').getByText(`${TA.name} (${TA.id}) · Teaching assistant`).waitFor();

  const ta = await openPage('ta', { width: 1280, height: 900 });
  await ta.goto(`${server.baseUrl}/courses/${encodeURIComponent(courseId)}/roster`);
  await signInWithToken(ta, mintToken(server.secret, TA));
  await ta.getByRole('heading', { name: 'Roster: E2E-300' }).waitFor();
  await ta.getByTestId('roster-counts').getByText('301 on the roster · 301 approved').waitFor();
  const taPanel = ta.locator('section[aria-labelledby="co-teachers-title"]');
  await taPanel.getByTestId('co-teachers').getByText('Teacher (owner)', { exact: false }).waitFor();
  assert.equal(await taPanel.getByRole('button', { name: 'Add', exact: true }).count(), 0, 'only the owner adds');
  // A join request reaches the TA's page live, as it reaches the teacher's.
  const code = joinLink.split('/').at(-1);
  const newcomer = { id: 'new-student-8', name: 'Omar Newcomer', email: 'omar@example.edu' };
  const joined = await fetch(`${server.baseUrl}/api/join`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${mintToken(server.secret, newcomer)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  assert.equal(joined.status, 200, await joined.text());
  await ta.getByTestId('roster-news').getByText(`${newcomer.name} asked to join`).waitFor();
  await ta.locator(`.requests li[data-user-id="${newcomer.id}"]`).getByRole('button', { name: 'Approve' }).click();
  await ta.getByTestId('roster-counts').getByText('302 on the roster · 302 approved').waitFor();
  await shot(ta, 'roster-ta-1280px');
});

test('no console errors on either page', () => {
  assert.deepEqual(consoleErrors, []);
});
