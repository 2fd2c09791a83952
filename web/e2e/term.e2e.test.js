// The term in a real browser against the real server (issue 21): a teacher plans a weekly slot,
// sees the term's calendar, the planned session starts by itself at the slot's time (the next
// minute), and an absence alert appears live after the third absence.
// Run: `npm --prefix web run test:e2e` (after `npm run build`).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, screenshotDir, startServer } from './support.js';

const COURSE_ID = 'demo-course';
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

let server;
let browser;
let demo;
let page;
let studentPage;
const consoleErrors = [];

async function api(method, urlPath, body) {
  const response = await fetch(`${server.baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${demo.teacher.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${urlPath}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function shot(name) {
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
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
  // UTC in the browser, so the slot's weekday and time are the server's too.
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, timezoneId: 'UTC', locale: 'en-GB' });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`uncaught: ${error.message}`));
  const studentContext = await browser.newContext({ viewport: { width: 375, height: 812 }, timezoneId: 'UTC' });
  studentPage = await studentContext.newPage();
  studentPage.on('pageerror', (error) => consoleErrors.push(`[student] uncaught: ${error.message}`));
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

test('a teacher plans a weekly slot, sees the calendar, the session starts by itself, and an alert follows the third absence', { timeout: 240_000 }, async () => {
  await page.goto(`${server.baseUrl}/`);
  await page.getByRole('button', { name: `Sign in as ${demo.teacher.name}` }).click();
  await page.getByRole('heading', { name: 'Your courses' }).waitFor();
  await page.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await page.getByRole('heading', { name: 'Term calendar' }).waitFor();
  const alice = demo.students.find((s) => s.enrollment === 'approved');
  await studentPage.goto(`${server.baseUrl}/`);
  await studentPage.getByRole('button', { name: `Sign in as ${alice.name}` }).click();
  await studentPage.getByRole('heading', { name: 'Your courses' }).waitFor();
  await studentPage.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await studentPage.getByRole('heading', { name: 'Term calendar' }).waitFor();

  // Alerts after 3 absences, set in the dashboard.
  const rules = page.locator('form.absence-rules');
  await rules.getByLabel('Alert after this many absences').fill('3');
  await rules.getByRole('button', { name: 'Save thresholds' }).click();
  await page.getByText('Thresholds saved.').waitFor();

  // The slot: this weekday, at the next whole minute (UTC), 5 minutes long, for 4 weeks.
  const now = new Date();
  let start = new Date(Math.ceil((now.getTime() + 1) / 60_000) * 60_000);
  if (start.getTime() - now.getTime() < 15_000) start = new Date(start.getTime() + 60_000);
  const hhmm = start.toISOString().slice(11, 16);
  const first = start.toISOString().slice(0, 10);
  const last = new Date(start.getTime() + 21 * 86_400_000).toISOString().slice(0, 10);
  const slot = page.locator('form.term-slot-form');
  await slot.getByLabel('Weekday').selectOption(WEEKDAYS[start.getUTCDay()]);
  await slot.getByLabel('Start time').fill(hhmm);
  await slot.getByLabel('Length (minutes)').fill('5');
  await slot.getByLabel('First day').fill(first);
  await slot.getByLabel('Last day').fill(last);
  await slot.getByLabel('Time zone').fill('UTC');
  await slot.getByLabel('Topic of its sessions (optional)').fill('Weekly lab');
  await slot.getByRole('button', { name: 'Plan slot' }).click();
  await page.getByText('Planned 4 sessions.').waitFor();

  // The calendar: four planned sessions, a week apart, at the slot's time.
  const plans = page.locator('.term-plan');
  await page.locator('.term-plan[data-state="planned"]').nth(3).waitFor();
  assert.equal(await plans.count(), 4);
  const times = await page.locator('.term-plan time:first-of-type').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('datetime')));
  assert.deepEqual(times, [0, 1, 2, 3].map((week) => new Date(start.getTime() + week * 7 * 86_400_000).toISOString()));
  await shot('term-calendar-planned');

  // The first starts by itself at its minute: the live panel and the calendar say so.
  const firstPlan = page.locator('.term-plan').first();
  await page.locator('.term-plan[data-state="running"]').waitFor({ timeout: 120_000 });
  assert.equal(await firstPlan.getAttribute('data-state'), 'running');
  const planId = await firstPlan.getAttribute('data-plan-id');
  await page.getByRole('heading', { name: 'Live sessions (1)' }).waitFor();
  const session = await api('GET', `/api/sessions/${planId}`);
  assert.equal(session.started_by, 'system');
  assert.equal(session.topic, 'Weekly lab');
  // Started by the scheduler at its time: not before it (the real clock runs on a little while it works).
  assert.ok(new Date(session.started_at) >= start, `${session.started_at} is before ${start.toISOString()}`);
  await shot('term-calendar-running');

  // Nobody checks in: the first absence when it ends, then two more sessions.
  await api('POST', `/api/sessions/${planId}/end`);
  await page.locator('.term-plan[data-state="held"]').waitFor();
  for (const topic of ['Extra session 1', 'Extra session 2']) {
    assert.equal(await page.locator('.absence-alert').count(), 0, 'no alert before the third absence');
    const extra = await api('POST', `/api/courses/${COURSE_ID}/sessions`, { topic });
    await api('POST', `/api/sessions/${extra.id}/end`);
  }
  // The third absence: an alert per student, live, without reloading the page.
  await page.locator('.absence-alert').first().waitFor();
  await page.getByRole('heading', { name: /Absence alerts \(\d+\)/ }).waitFor();
  const messages = await page.locator('.absence-alert strong').allTextContents();
  assert.ok(messages.length >= 1);
  assert.ok(messages.every((m) => /has been absent from 3 sessions of /.test(m)), messages.join('\n'));
  await shot('term-absence-alerts');
  // The student is told too, on its own page, live.
  const notice = studentPage.locator('.absence-alert.notice');
  await notice.waitFor();
  assert.equal(await notice.locator('strong').textContent(), 'You have been absent from 3 of its sessions so far.');
  await studentPage.screenshot({ path: path.join(screenshotDir, 'term-student-notice.png'), fullPage: true });

  // Acknowledged, it leaves the list.
  const before = messages.length;
  await page.locator('.absence-alert').first().getByRole('button', { name: 'Acknowledge' }).click();
  await page.getByRole('heading', { name: `Absence alerts (${before - 1})` }).waitFor();

  assert.deepEqual(consoleErrors, []);
});
