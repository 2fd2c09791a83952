// The compose stack's smoke test, from outside, through nginx only (scripts/container-test runs it).
//
// A student's socket (the official socket.io-client, as the seed's hook uses it) subscribes to
// the demo course; the teacher starts a session and the student sees it; a check-in is counted;
// then the node holding the student's socket is killed (SIGKILL); while the student is away a
// second student checks in and the teacher ends the session; the student's socket comes back
// through nginx on the other node with its connection state recovered (socket.recovered) and the
// missed end delivered; a new session then reaches it live. Every course event it got is checked:
// exactly the expected ones, in order, each once (offsets strictly growing).
//
// Environment: BASE_URL (nginx), DEMO (the JSON of `attendance-live demo --json`),
// NODES (JSON: [{"name", "container", "url"}] of the two app nodes, their direct URLs used only
// to see where the socket is), PODMAN (the podman command).

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const { io } = require('socket.io-client');

const STEP_TIMEOUT_MS = 20_000;
const BASE_URL = need('BASE_URL');
const DEMO = JSON.parse(need('DEMO'));
const NODES = JSON.parse(need('NODES'));
const PODMAN = process.env.PODMAN || 'podman';
const COURSE = DEMO.course.id;
const teacher = DEMO.teacher.token;
const [first, second] = DEMO.students.filter((s) => s.enrollment === 'approved');

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/container-test`);
  return value;
}

function log(message) {
  console.log(`    smoke: ${message}`);
}

async function api(method, path, token, body) {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/** Resolves with the first received entry (from now on or already seen) that matches. */
function waitFor(seen, test, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`timed out waiting for ${what}; received: ${JSON.stringify(seen, null, 1)}`));
    }, STEP_TIMEOUT_MS);
    const poll = setInterval(() => {
      const found = seen.find(test);
      if (found) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(found);
      }
    }, 20);
  });
}

/** Socket.IO connections open on a node (its own /metrics); 0 for a node that is down. */
async function socketsOn(node) {
  let text;
  try {
    text = await (await fetch(`${node.url}/metrics`)).text();
  } catch {
    return 0;
  }
  const line = text.split('\n').find((l) => l.startsWith('attendance_socket_connections '));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function nodeHolding() {
  const counts = await Promise.all(NODES.map(socketsOn));
  const holding = NODES.filter((_, i) => counts[i] > 0);
  if (holding.length !== 1) throw new Error(`expected the socket on one node, counts: ${counts}`);
  return holding[0];
}

async function main() {
  // The security headers of the server come through nginx untouched.
  const page = await fetch(`${BASE_URL}/`);
  for (const header of ['content-security-policy', 'x-content-type-options', 'referrer-policy']) {
    if (!page.headers.get(header)) throw new Error(`GET / through nginx lacks ${header}`);
  }
  if (/\d/.test(page.headers.get('server') || '')) throw new Error('nginx discloses its version');
  log('dashboard served through nginx with the security headers');

  const seen = []; // every course event the student's socket received, in order
  const socket = io(BASE_URL, {
    auth: { token: first.token },
    reconnectionDelay: 2000, // long enough that the check-in below happens while it is away
    reconnectionDelayMax: 2000,
    randomizationFactor: 0,
  });
  for (const name of ['courseSessionStarted', 'courseSessionEnded', 'activeSessionsData']) {
    socket.on(name, (data, offset) => seen.push({ name, data, offset }));
  }
  const connects = [];
  socket.on('connect', () => connects.push({ recovered: socket.recovered }));
  const disconnects = [];
  socket.on('disconnect', (reason) => disconnects.push(reason));
  socket.on('connect_error', (error) => log(`connect_error: ${error.message}`));

  await waitFor(connects, () => true, 'the first connection');
  socket.emit('subscribeToCourse', { course_id: COURSE });
  await waitFor(seen, (e) => e.name === 'activeSessionsData' && e.offset === undefined, 'the subscription snapshot');
  log(`${first.id} subscribed to ${COURSE}`);

  const session = await api('POST', `/api/courses/${COURSE}/sessions`, teacher, { topic: 'Containers' });
  await waitFor(seen, (e) => e.name === 'courseSessionStarted' && e.data.session_id === session.id, 'courseSessionStarted');
  log(`session ${session.id} started and seen`);

  await api('POST', `/api/sessions/${session.id}/check-in`, first.token);
  const counted = (n) => (e) =>
    e.name === 'activeSessionsData' && e.data.activeSessions.some((s) => s.sessionId === session.id && s.studentCount === n);
  await waitFor(seen, counted(1), 'studentCount 1');
  log('check-in counted (studentCount 1)');

  const victim = await nodeHolding();
  const survivor = NODES.find((n) => n !== victim);
  execFileSync(PODMAN, ['kill', '--signal', 'KILL', victim.container], { stdio: 'ignore' });
  await waitFor(disconnects, () => true, 'the disconnect after the kill');
  log(`${victim.name} killed; the socket saw "${disconnects[0]}"`);

  // While the student is away (through nginx, so on the survivor): a second student checks in,
  // and the teacher ends the session. Counts are not replayed one by one (docs/protocol.md,
  // "Recovering"); the end and its snapshot are, and the final statistics count both check-ins.
  await api('POST', `/api/sessions/${session.id}/check-in`, second.token);
  await api('POST', `/api/sessions/${session.id}/end`, teacher);
  await waitFor(connects, (c, i) => i === 1, 'the reconnection');
  if (!connects[1].recovered) {
    throw new Error('the reconnection did not recover its connection state (socket.recovered is false)');
  }
  const ended = await waitFor(
    seen,
    (e) => e.name === 'courseSessionEnded' && e.data.session_id === session.id,
    'the courseSessionEnded sent while the socket was away',
  );
  if (ended.data.final_statistics.present !== 2) {
    throw new Error(`final statistics count ${ended.data.final_statistics.present} present, not 2`);
  }
  const holder = await nodeHolding();
  if (holder !== survivor) throw new Error(`the socket came back on ${holder.name}, not on ${survivor.name}`);
  log(`socket recovered on ${survivor.name}: the session's end, missed while away (final present = 2)`);

  // And live again: a new session reaches it once, after the recovered events.
  const next = await api('POST', `/api/courses/${COURSE}/sessions`, teacher, { topic: 'After the kill' });
  await waitFor(seen, (e) => e.name === 'courseSessionStarted' && e.data.session_id === next.id, 'the next session');
  await api('POST', `/api/sessions/${next.id}/end`, teacher);
  await waitFor(seen, (e) => e.name === 'courseSessionEnded' && e.data.session_id === next.id, 'its end');

  // Nothing lost, nothing twice: the course events with offsets are exactly these, in this
  // order (the subscription's snapshot has none), and the offsets only grow.
  const streamed = seen.filter((e) => e.offset !== undefined);
  const names = streamed.map((e) => e.name);
  const expected = [
    'courseSessionStarted', 'activeSessionsData', 'activeSessionsData', // start, snapshot, check-in
    'courseSessionEnded', 'activeSessionsData', // missed while away, recovered
    'courseSessionStarted', 'activeSessionsData', 'courseSessionEnded', 'activeSessionsData', // live again
  ];
  if (JSON.stringify(names) !== JSON.stringify(expected)) {
    throw new Error(`course events received: ${names.join(', ')}; expected ${expected.join(', ')}`);
  }
  const offsets = streamed.map((e) => BigInt(e.offset));
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] <= offsets[i - 1]) throw new Error(`offsets out of order or repeated: ${offsets.join(', ')}`);
  }
  log(`${names.length} course events, each once, in order (offsets ${offsets[0]}..${offsets.at(-1)})`);
  socket.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`smoke test failed: ${error.message}${error.cause ? ` (${error.cause.message || error.cause})` : ''}`);
    process.exit(1);
  },
);
