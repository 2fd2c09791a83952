// The dashboard in a real browser against the real server: a teacher and two
// students, each in a browser context of their own (separate session storage,
// separate sockets). Run: `npm --prefix web run test:e2e` (after `npm run build`).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, distIsBuilt, resetServerLog, screenshotDir, startServer } from './support.js';

const COURSE_ID = 'demo-course';
const TOPIC = 'E2E: sorting algorithms';

let server;
let browser;
let demo;
/** @type {Record<string, {context: import('playwright-core').BrowserContext, page: import('playwright-core').Page}>} */
const people = {};
const consoleErrors = [];

async function openPerson(key, viewport, options = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`[${key}] console.error: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`[${key}] uncaught: ${error.message}`));
  people[key] = { context, page };
  return page;
}

/** End the live session from its panel: the button, then the confirmation (one click ends nothing). */
async function endTheSession(page) {
  await page.getByRole('button', { name: 'End session' }).click();
  await page.getByRole('button', { name: 'Yes, end the session' }).click();
}

async function shot(page, name) {
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

before(async () => {
  const executablePath = chromiumPath(); // fails with the install command when missing
  distIsBuilt();
  resetServerLog();
  server = await startServer();
  mkdirSync(screenshotDir, { recursive: true });
  // playwright's launch() gives the browser a fresh temporary profile (user-data-dir).
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  const response = await fetch(`${server.baseUrl}/api/demo/users`);
  assert.equal(response.status, 200, 'GET /api/demo/users must answer 200 when the server runs with --demo');
  demo = await response.json();
  await openPerson('teacher', { width: 1280, height: 900 });
  await openPerson('student1', { width: 375, height: 812 }); // phone width
  // Another time zone: the page must show times in the viewer's own zone.
  await openPerson('student2', { width: 800, height: 900 }, { timezoneId: 'Asia/Kolkata', locale: 'en-US' });
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

function student(n) {
  return demo.students.find((s) => s.id === `demo-student-${n}`);
}

test('the sign-in page offers the demo users; the teacher and a student pick theirs', async () => {
  const { page: teacher } = people.teacher;
  await teacher.goto(`${server.baseUrl}/`);
  await teacher.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
  assert.equal(await teacher.locator('input[name="token"]').count(), 1, 'the sign-in form has an input named token');
  await teacher.getByRole('button', { name: `Sign in as ${demo.teacher.name}` }).waitFor();
  await shot(teacher, 'sign-in');
  await teacher.getByRole('button', { name: `Sign in as ${demo.teacher.name}` }).click();
  await teacher.getByRole('heading', { name: 'Your courses' }).waitFor();

  const { page: s1 } = people.student1;
  await s1.goto(`${server.baseUrl}/`);
  await s1.getByRole('button', { name: `Sign in as ${student(1).name}` }).click();
  await s1.getByRole('heading', { name: 'Your courses' }).waitFor();
  await shot(s1, 'course-list-student-375px');
});

test('a student signs in with the keyboard alone by pasting a token and pressing Enter', async () => {
  const { page } = people.student2;
  await page.goto(`${server.baseUrl}/`);
  await page.locator('input[name="token"]').waitFor();
  let focusedName = null;
  for (let i = 0; i < 10 && focusedName !== 'token'; i += 1) {
    await page.keyboard.press('Tab');
    focusedName = await page.evaluate(() => document.activeElement?.getAttribute('name'));
  }
  assert.equal(focusedName, 'token', 'Tab reaches the token input');
  await page.keyboard.insertText(student(2).token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Your courses' }).waitFor();
  assert.ok(!page.url().includes(student(2).token.slice(0, 20)), 'the token is not in the URL');
  const stored = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length }));
  assert.deepEqual(stored, { session: 1, local: 0 }, 'the token is in sessionStorage only');
});

test('everyone opens the course page; students see the seed view with no session', async () => {
  for (const key of ['teacher', 'student1', 'student2']) {
    const { page } = people[key];
    await page.getByRole('link', { name: /DEMO-101/ }).click();
    await page.waitForURL(`${server.baseUrl}/courses/${COURSE_ID}`);
    await page.locator('.status.connected').waitFor({ timeout: 10_000 });
  }
  for (const key of ['student1', 'student2']) {
    const { page } = people[key];
    const empty = page.locator('.no-sessions');
    await empty.waitFor();
    assert.equal((await empty.textContent()).trim(), 'No active attendance sessions');
    await page.evaluate(() => {
      window.__notReloaded = true; // gone if the page reloads
    });
  }
  await people.teacher.page.getByRole('heading', { name: 'Start a session' }).waitFor();
  // The start form shows the server's defaults (GET /api/config): 180 and 10 minutes.
  await people.teacher.page.waitForFunction(() => document.querySelector('#max-duration')?.value === '180');
  assert.equal(await people.teacher.page.getByLabel('Late after (minutes)').inputValue(), '10');
});

test('the students see a started session arrive, without a reload', async () => {
  const { page: teacher } = people.teacher;
  await teacher.getByLabel('Topic (optional)').fill(TOPIC);
  await teacher.getByLabel('Late after (minutes)').fill('10');
  await teacher.getByLabel('Maximum duration (minutes)').fill('60');
  // Arrival and order, not speed: no card before the click, the card after it, on a page that was
  // not reloaded. How fast an event reaches its subscribers is measured by bench/run.py (fan-out).
  for (const key of ['student1', 'student2']) {
    assert.equal(await people[key].page.locator('.active-sessions .session-card').count(), 0);
  }
  await teacher.getByRole('button', { name: 'Start session' }).click();
  await Promise.all(
    ['student1', 'student2'].map((key) =>
      people[key].page.locator('.active-sessions .session-card').first().waitFor({ state: 'visible' }),
    ),
  );
  for (const key of ['student1', 'student2']) {
    const { page } = people[key];
    assert.equal(await page.evaluate(() => window.__notReloaded), true, `${key}'s page was not reloaded`);
    assert.equal(await page.locator('.no-sessions').count(), 0);
    await page.locator('.notification-started').waitFor();
    await page.locator('.session-card', { hasText: TOPIC }).waitFor();
    await page.getByRole('button', { name: 'Check in' }).waitFor({ state: 'visible' });
  }
  // Times are shown in the viewer's time zone (student2 is in Asia/Kolkata, UTC+5:30).
  const started = people.student2.page.locator('.session-card time').first();
  const iso = await started.getAttribute('datetime');
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Kolkata', hour: 'numeric', minute: '2-digit', hour12: true })
      .formatToParts(new Date(iso))
      .map((part) => [part.type, part.value]),
  );
  const shown = await started.textContent();
  assert.ok(shown.startsWith(`${parts.hour}:${parts.minute}:`), `${iso} shown as "${shown}", expected ${parts.hour}:${parts.minute} in Asia/Kolkata`);

  await teacher.locator('.live-session').waitFor();
  await teacher.locator('.live-session tbody tr').first().waitFor({ timeout: 5000 });
  const rows = await teacher.locator('.live-session tbody tr').count();
  const approved = demo.students.filter((s) => s.enrollment === 'approved').length;
  assert.equal(rows, approved, 'the live roster lists every approved student');
  // The teacher who started it gets no banner about it; the live session is listed once.
  assert.equal(await teacher.locator('.notification-started').count(), 0, 'no banner for her own start');
  assert.equal(await teacher.locator('.past-session[data-status="active"]').count(), 0, 'listed once, as live');
  // Nobody is shown the 32-character session id.
  for (const key of ['teacher', 'student1', 'student2']) {
    const text = await people[key].page.evaluate(() => document.body.innerText);
    assert.doesNotMatch(text, /[0-9a-f]{32}/, `${key}'s page shows no session id`);
  }
});

test("a student types the room's code; the check-in updates the teacher's live roster", async () => {
  const { page: s1 } = people.student1;
  // The dashboard starts sessions in code mode: the code is on the teacher's panel (and projector).
  const shown = people.teacher.page.locator('.live-session .current-code [data-code]');
  await shown.waitFor({ timeout: 5000 });
  const code = await shown.getAttribute('data-code');
  assert.match(code, /^[34679ACEFHKMNPRTWXY]{6}$/);
  const input = s1.getByLabel('Code shown in the room');
  await input.waitFor();
  await input.fill(code.toLowerCase()); // typed as it comes: the page upper-cases it
  // Its live socket is connected: the check-in goes over it (checkIn), not as an HTTP request.
  const posts = [];
  const onRequest = (request) => {
    if (request.method() === 'POST' && /\/check-in$/.test(new URL(request.url()).pathname)) posts.push(request.url());
  };
  s1.on('request', onRequest);
  await input.press('Enter'); // keyboard operable
  await s1.getByRole('button', { name: 'Checked in' }).waitFor({ timeout: 5000 });
  s1.off('request', onRequest);
  assert.deepEqual(posts, [], 'checked in over the socket');
  await s1.locator('.my-status [data-status="present"]').waitFor();

  const { page: teacher } = people.teacher;
  const row = teacher.locator('.live-session tr[data-user-id="demo-student-1"]');
  await teacher.locator('.live-session tr[data-user-id="demo-student-1"][data-status="present"]').waitFor({ timeout: 5000 });
  assert.match(await row.textContent(), /Present/);
  await teacher.locator('.live-session [data-stat="on-time"] dd', { hasText: '1' }).waitFor({ timeout: 5000 });
  // The other student sees the count change without a reload.
  await people.student2.page.locator('.session-card', { hasText: /Students: 1 of/ }).waitFor({ timeout: 5000 });

  await shot(s1, 'student-live-375px');
});

test('the teacher overrides a status, and the student sees it; the CSV report downloads', async () => {
  const { page: teacher } = people.teacher;
  const name = student(2).name;
  // absent -> excused leaves the session's count alone: the student learns of it
  // from myAttendanceUpdated, not from a count change.
  // Choosing a status saves it: no Save button to forget.
  await teacher.getByLabel(`Status for ${name}`, { exact: true }).selectOption('excused');
  await people.student2.page.locator('.my-status [data-status="excused"]').waitFor({ timeout: 5000 });

  await teacher.getByLabel(`Status for ${name}`, { exact: true }).selectOption('late');
  await teacher.locator('.live-session tr[data-user-id="demo-student-2"][data-status="late"]').waitFor({ timeout: 5000 });
  await people.student2.page.locator('.my-status [data-status="late"]').waitFor({ timeout: 5000 });
  // A remark on demand.
  await teacher.getByRole('button', { name: `Add remark for ${name}` }).click();
  await teacher.getByLabel(`Remarks for ${name}`, { exact: true }).fill('Arrived after the break');
  await teacher.getByRole('button', { name: `Save remark for ${name}` }).click();
  await teacher
    .locator('.live-session tr[data-user-id="demo-student-2"] td[data-label="Remarks"]', { hasText: 'Arrived after the break' })
    .waitFor({ timeout: 5000 });

  const [download] = await Promise.all([
    teacher.waitForEvent('download'),
    teacher.getByRole('button', { name: 'Download CSV report' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  assert.ok(download.suggestedFilename().endsWith('.csv'), `a .csv file, got ${download.suggestedFilename()}`);
  const approved = demo.students.filter((s) => s.enrollment === 'approved').length;
  assert.equal(csv.length, 1 + approved, 'a header and one row per roster record');
  assert.ok(csv.some((line) => line.includes('demo-student-1') && line.includes('present')), csv.join('\n'));
  await shot(teacher, 'teacher-live');
  await shot(people.student2.page, 'student-live');
});

test('ending the session notifies the students and shows the final statistics', async () => {
  const { page: teacher } = people.teacher;
  await endTheSession(teacher);
  const summary = teacher.locator('.ended-summary');
  await summary.waitFor({ timeout: 5000 });
  // Tiles that add up: on time + late + absent + excused = total; "attended" counts late too.
  const tile = async (key) => Number((await summary.locator(`[data-stat="${key}"] dd`).textContent()).trim());
  assert.equal(await tile('on-time'), 1);
  assert.equal(await tile('late'), 1);
  const approved = demo.students.filter((s) => s.enrollment === 'approved').length;
  assert.equal(await tile('total'), approved);
  assert.equal((await tile('on-time')) + (await tile('late')) + (await tile('absent')) + (await tile('excused')), approved);
  assert.match(await summary.locator('[data-stat="attended"]').textContent(), new RegExp(`Attended \\(on time or late\\): 2 of ${approved}`));
  assert.equal(await teacher.locator('.notification-ended').count(), 0, 'the summary, not a banner, for her own end');
  await teacher.locator('.past-session[data-status="ended"]').first().waitFor({ timeout: 5000 });

  for (const key of ['student1', 'student2']) {
    const { page } = people[key];
    await page.locator('.notification-ended').waitFor({ timeout: 5000 });
    assert.match(await page.locator('.notification-ended').textContent(), /ended by/);
    const empty = page.locator('.no-sessions');
    await empty.waitFor({ timeout: 5000 });
    assert.equal((await empty.textContent()).trim(), 'No active attendance sessions');
    assert.equal(await page.evaluate(() => window.__notReloaded), true, `${key}'s page was not reloaded`);
  }
  await shot(teacher, 'teacher-ended');
  await shot(people.student1.page, 'student-ended-375px');
});

test('after a server restart every page reconnects and subscribes again', async () => {
  const pages = Object.values(people).map(({ page }) => page);
  const mark = consoleErrors.length;
  const { dir, port, secret } = server;
  await server.stop({ keepDir: true });
  await Promise.all(pages.map((page) => page.locator('.status.disconnected').waitFor({ timeout: 10_000 })));
  server = await startServer({ dir, port, secret });
  await Promise.all(pages.map((page) => page.locator('.status.connected').waitFor({ timeout: 30_000 })));

  // While the server was down the browser itself logs the refused connections;
  // those, and only those, are expected here.
  const during = consoleErrors.splice(mark);
  const unexpected = during.filter(
    (line) => !/WebSocket connection to .* failed|Failed to load resource|ERR_CONNECTION_REFUSED/.test(line),
  );
  consoleErrors.push(...unexpected);

  // Only a page that subscribed again is in the course's room to hear this.
  const { page: teacher } = people.teacher;
  await teacher.getByLabel('Topic (optional)').fill('After the restart');
  await teacher.getByRole('button', { name: 'Start session' }).click();
  for (const key of ['student1', 'student2']) {
    await people[key].page.locator('.session-card', { hasText: 'After the restart' }).waitFor({ timeout: 5000 });
  }
  await teacher.locator('.live-session tbody tr').first().waitFor({ timeout: 5000 });
  await endTheSession(teacher);
  for (const key of ['student1', 'student2']) {
    await people[key].page.locator('.no-sessions').waitFor({ timeout: 5000 });
  }
});

test('a reload of /courses/{id} keeps the tab signed in and the page readable at 375px', async () => {
  const { page } = people.student1;
  await page.reload();
  await page.locator('.no-sessions').waitFor({ timeout: 10_000 });
  await page.locator('.status.connected').waitFor({ timeout: 10_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375px (overflow ${overflow}px)`);
  const { page: teacher } = people.teacher;
  await teacher.setViewportSize({ width: 375, height: 812 });
  await teacher.getByRole('button', { name: 'Show records' }).first().click();
  await teacher.locator('.past-session table.roster').waitFor({ timeout: 5000 });
  const teacherOverflow = await teacher.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  await shot(teacher, 'teacher-ended-375px');
  assert.ok(teacherOverflow <= 0, `the teacher view fits 375px too (overflow ${teacherOverflow}px)`);
});

async function noOverflow(page, who) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${who}: no horizontal scrolling (overflow ${overflow}px)`);
}

// Two sessions have ended: in the first demo-student-1 was on time and
// demo-student-2 late (the others absent); in the second everyone was absent.
test("the teacher's course report: sortable, the students below a threshold marked, a CSV", async () => {
  const { page: teacher } = people.teacher;
  await teacher.setViewportSize({ width: 1280, height: 900 });
  const report = teacher.locator('.course-report');
  await report.locator('tbody tr').first().waitFor({ timeout: 5000 });
  const approved = demo.students.filter((s) => s.enrollment === 'approved');
  assert.equal(await report.locator('tbody tr').count(), approved.length);
  assert.match(await report.locator('p.hint').first().textContent(), /2 ended sessions/);
  // 50 % for the first two students, 0 % for the others: all below 80 %, three below 40 %.
  assert.equal(await report.locator('tr.below-threshold').count(), approved.length);
  await teacher.getByLabel('Highlight below (%)').fill('40');
  assert.equal(await report.locator('tr.below-threshold').count(), approved.length - 2);
  assert.equal(await report.locator('tr.below-threshold[data-user-id="demo-student-1"]').count(), 0);

  const rateHeader = report.locator('th', { has: teacher.getByRole('button', { name: /^Attendance/ }) });
  await teacher.getByRole('button', { name: /^Attendance/ }).click();
  assert.equal(await rateHeader.getAttribute('aria-sort'), 'ascending');
  assert.equal(await report.locator('tbody tr').first().locator('td[data-label="Attendance"]').textContent(), '0%');
  await teacher.getByRole('button', { name: /^Attendance/ }).click();
  assert.equal(await rateHeader.getAttribute('aria-sort'), 'descending');
  assert.equal(await report.locator('tbody tr').first().getAttribute('data-user-id'), 'demo-student-1');
  const first = report.locator('tbody tr').first();
  assert.equal(await first.locator('td[data-label="On time"]').textContent(), '1');
  assert.equal(await first.locator('td[data-label="Absent"]').textContent(), '1');
  assert.equal(await first.locator('td[data-label="Attendance"]').textContent(), '50%');

  const [download] = await Promise.all([
    teacher.waitForEvent('download'),
    teacher.getByRole('button', { name: 'Download course report (CSV)' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  assert.equal(csv[0], 'user_id,name,present,late,absent,excused,sessions,attendance_rate');
  assert.equal(csv.length, 1 + approved.length);
  assert.ok(csv.includes(`demo-student-2,${student(2).name},0,1,1,0,2,0.5000`), csv.join('\n'));
  await report.scrollIntoViewIfNeeded();
  await shot(teacher, 'teacher-report');

  await teacher.setViewportSize({ width: 375, height: 812 });
  await report.locator('tbody tr').first().waitFor();
  // The headings are hidden at this width: the "Sort by" control sorts instead.
  await teacher.getByLabel('Sort by').selectOption('attendance_rate');
  assert.equal(await report.locator('tbody tr').first().locator('td[data-label="Attendance"]').textContent(), '0%');
  await teacher.getByRole('button', { name: /reverse the order/ }).click();
  assert.equal(await report.locator('tbody tr').first().getAttribute('data-user-id'), 'demo-student-1');
  await noOverflow(teacher, 'the teacher report at 375px');
  await shot(teacher, 'teacher-report-375px');
});

test("a student's own record over the course: a mark per session", async () => {
  for (const [key, n, width, name] of [
    ['student1', 1, 375, 'student-report-375px'],
    ['student2', 2, 1280, 'student-report'],
  ]) {
    const { page } = people[key];
    await page.setViewportSize({ width, height: 900 });
    const mine = page.locator('.my-attendance');
    await mine.locator('.attendance-chart circle[data-status]').nth(1).waitFor({ timeout: 5000 });
    const statuses = await mine.locator('.attendance-chart circle[data-status]').evaluateAll((marks) =>
      marks.map((mark) => mark.dataset.status),
    );
    assert.deepEqual(statuses, n === 1 ? ['present', 'absent'] : ['late', 'absent'], `${key}'s chart`);
    assert.match(await mine.locator('.my-rate').textContent(), /Attendance 50%/);
    assert.match(await mine.locator('figcaption').textContent(), /2 sessions: .*1 absent/);
    // A student sees no one else's record.
    assert.equal(await page.locator('.course-report').count(), 0);
    await noOverflow(page, `${key} at ${width}px`);
    await mine.scrollIntoViewIfNeeded();
    await shot(page, name);
  }
});

test('the API docs at /docs render with no network but the server', async () => {
  const page = await openPerson('docs', { width: 1280, height: 900 });
  const server_ = new URL(server.baseUrl);
  const elsewhere = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.host === server_.host) return route.continue();
    elsewhere.push(url.href);
    return route.abort();
  });
  await page.goto(`${server.baseUrl}/docs`);
  await page.locator('.swagger-ui .info .title', { hasText: 'attendance-live' }).waitFor({ timeout: 10_000 });
  await page.locator('.opblock-summary-path', { hasText: '/api/courses/{course_id}/report' }).first().waitFor();
  assert.deepEqual(elsewhere, [], 'the docs page asked nothing of any other host');
  await shot(page, 'api-docs');
  await people.docs.context.close();
  delete people.docs;
});

/** A page's current projector code, once it is shown. */
async function projectorCode(page) {
  const code = page.locator('.projector .code[data-code]:not([data-code=""])');
  await code.waitFor({ timeout: 10_000 });
  return code.getAttribute('data-code');
}

async function nextProjectorCode(page, after, timeout = 12_000) {
  await page.waitForFunction(
    (previous) => {
      const code = document.querySelector('.projector .code')?.dataset.code;
      return code && code !== previous;
    },
    after,
    { timeout },
  );
  return projectorCode(page);
}

let projected; // {first, link}: the first code the projector showed, and a QR link

test('the projector view shows the QR code and the code, rotating live without a reload', async () => {
  const { page: teacher } = people.teacher;
  await teacher.setViewportSize({ width: 1280, height: 900 });
  await teacher.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  await teacher.getByLabel('Topic (optional)').fill('Projector');
  assert.equal(await teacher.getByLabel('Check-in').inputValue(), 'code', 'code mode is what the dashboard offers');
  await teacher.getByLabel('New code every (seconds)').fill('5');
  await teacher.getByRole('button', { name: 'Start session' }).click();
  await teacher.getByRole('link', { name: 'Open the projector view' }).click();
  await teacher.waitForURL(/\/sessions\/[0-9a-f]{32}\/projector$/);
  await teacher.evaluate(() => {
    window.__notReloaded = true;
  });
  const first = await projectorCode(teacher);
  const qr = teacher.locator('.projector-qr img');
  await qr.waitFor();
  assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml/);
  const link = await qr.getAttribute('data-url');
  assert.equal(link, `${server.baseUrl}/check-in/${teacher.url().split('/')[4]}?code=${first}`);
  assert.match(await teacher.locator('.countdown').textContent(), /^new code in [0-5] s$/);
  await shot(teacher, 'projector');

  const second = await nextProjectorCode(teacher, first);
  assert.notEqual(second, first);
  assert.equal(await qr.getAttribute('data-url'), link.replace(`code=${first}`, `code=${second}`));
  assert.equal(await teacher.evaluate(() => window.__notReloaded), true, 'the projector was not reloaded');
  projected = { first, link: await qr.getAttribute('data-url') };
});

test('a student scans the QR code signed out: signs in, and is checked in with the code', async () => {
  const page = await openPerson('student3', { width: 375, height: 812 });
  const { page: teacher } = people.teacher;
  const link = await teacher.locator('.projector-qr img').getAttribute('data-url'); // the code on screen now
  await page.goto(link);
  await page.getByText('Sign in to check in; you will come straight back to the check-in.').waitFor();
  await page.getByRole('button', { name: `Sign in as ${student(3).name}` }).click();
  await page.getByText('You are checked in. You can close this page.').waitFor({ timeout: 10_000 });
  await page.locator('.my-status [data-status="present"]').waitFor();
  assert.equal(new URL(page.url()).search, '', 'the code is gone from the address bar');
  await teacher.locator('.projector-count[data-present="1"]').waitFor({ timeout: 5000 });
  await shot(page, 'student-check-in-375px');
});

test('a stale code is refused with what to do; the code on screen now is accepted', async () => {
  const { page: teacher } = people.teacher;
  const { page: s2 } = people.student2;
  await s2.goto(`${server.baseUrl}/courses/${COURSE_ID}`);
  // Two rotations after the first code: it is past its grace (5 s after it was replaced).
  let current = await nextProjectorCode(teacher, await projectorCode(teacher));
  if (current !== projected.first) current = await nextProjectorCode(teacher, current);
  const input = s2.getByLabel('Code shown in the room');
  await input.fill(projected.first);
  const mark = consoleErrors.length;
  await s2.getByRole('button', { name: 'Check in' }).click();
  const refusal = s2.locator('.check-in-form [role="alert"][data-reason="code_invalid"]');
  await refusal.waitFor({ timeout: 5000 });
  // The browser itself logs the refused request (a 403); that one line is expected here.
  const during = consoleErrors.splice(mark);
  consoleErrors.push(...during.filter((line) => !/^\[student2\] console\.error: Failed to load resource: .*403/.test(line)));
  assert.match(await refusal.textContent(), /type the code on the screen now, or scan the QR code again/);
  await s2.locator('.my-status [data-status="none"], .my-status [data-status="absent"]').first().waitFor();

  await input.fill(await projectorCode(teacher));
  await s2.getByRole('button', { name: 'Check in' }).click();
  await s2.getByRole('button', { name: 'Checked in' }).waitFor({ timeout: 5000 });
  await teacher.locator('.projector-count[data-present="2"]').waitFor({ timeout: 5000 });

  await teacher.getByRole('link', { name: 'Leave projector view' }).click();
  await endTheSession(teacher);
  await teacher.locator('.ended-summary').waitFor({ timeout: 5000 });
  await people.student3.context.close();
  delete people.student3;
});

test('no page logged a console error', () => {
  assert.deepEqual(consoleErrors, []);
});
