// Connection state recovery with the official socket.io-client, as the seed's hook uses it (plain
// `io(url, {auth: {token}})`, resubscribing on every 'connect'): a websocket blip
// (`socket.io.engine.close()`) and socket.io-client's own reconnection. Within the window the
// client gets `socket.recovered === true` and every course event committed while it was away, in
// order, each once, before any new one; after the window it gets a fresh session and resubscribes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startServer } from './lib/harness.mjs';
import { trackCourse } from './lib/tracker.mjs';

// A fixed reconnection delay: the test commits what the client misses while it is away, and then
// checks that those events came after the reconnection (so they were recovered, not received live).
const RECONNECT = { reconnectionDelay: 3000, reconnectionDelayMax: 3000, randomizationFactor: 0 };
const COURSE_EVENTS = new Set(['courseSessionStarted', 'courseSessionEnded', 'activeSessionsData']);

/** [name, what identifies it] of every course event received from seq `since` on. */
function courseEvents(tracker, since) {
  return tracker.log.events
    .filter((e) => e.seq >= since && COURSE_EVENTS.has(e.name))
    .map((e) => [e.name, e.name === 'activeSessionsData'
      ? e.data.activeSessions.map((s) => s.sessionId).join(',')
      : e.data.session_id]);
}

/** The offsets (last argument, a string of digits) of the course events from seq `since` on. */
function offsets(tracker, since) {
  return tracker.log.events
    .filter((e) => e.seq >= since && COURSE_EVENTS.has(e.name) && e.args.length === 2)
    .map((e) => {
      assert.match(e.args[1], /^\d+$/, `${e.name}'s offset is a decimal string`);
      return Number(e.args[1]);
    });
}

/** Resolves once the connection runs over websocket (the seed's default: polling, then upgrade). */
function upgraded(socket) {
  const { engine } = socket.io;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return new Promise((resolve) => engine.once('upgrade', resolve));
}

async function startAndEnd(server, course, teacher, topic) {
  const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
    { token: teacher.token, body: { topic } }, 201);
  await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
  return session.id;
}

describe('connection state recovery (RECOVERY_WINDOW_SECONDS=120)', () => {
  let server;
  const open = [];

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const t of open) t.cleanup();
    await server?.close();
  });

  it('a websocket blip: recovered, the missed events in order before new ones, nothing twice', async () => {
    const { course: { id: course }, teacher, students } = server.demo;
    const student = students.find((s) => s.id === 'demo-student-1');
    const tracker = trackCourse(server.url, course, student.token, { label: 'blip', ioOptions: RECONNECT });
    open.push(tracker);
    await tracker.next('activeSessionsData', { what: 'first snapshot' });
    assert.equal(tracker.socket.recovered, false, 'a first connection recovers nothing');
    await upgraded(tracker.socket);

    // One session while connected: live, each course event with its offset.
    const live = await startAndEnd(server, course, teacher, 'live');
    await tracker.next('courseSessionEnded');
    await tracker.next('activeSessionsData', { where: (d) => d.activeSessions.length === 0, what: 'after end' });
    const seenLive = offsets(tracker, 0);
    assert.equal(seenLive.length, 4, 'start, snapshot, end, snapshot: each with an offset');

    // The blip: the transport closes under the client; socket.io-client reconnects by itself.
    const mark = tracker.log.mark;
    tracker.socket.io.engine.close();
    const gone = await tracker.next('disconnect', { what: 'the blip' });
    assert.equal(tracker.socket.active, true, `socket.io-client reconnects by itself after "${gone.data}"`);
    const missedA = await startAndEnd(server, course, teacher, 'missed A');
    const missedB = await startAndEnd(server, course, teacher, 'missed B');

    const back = await tracker.next('connect', { where: (_, e) => e.seq > gone.seq, timeout: 15_000, what: 'reconnection' });
    assert.equal(tracker.socket.recovered, true, 'the CONNECT reply carried the same pid');
    // The seed's hook subscribes again on connect: its snapshot comes after the recovered events.
    await tracker.next('activeSessionsData', {
      where: (_, e) => e.seq > back.seq && e.args.length === 1, what: 'the resubscription snapshot',
    });
    const now = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: { topic: 'after' } }, 201);
    await tracker.next('courseSessionStarted', { where: (d) => d.session_id === now.id, what: 'a new one' });
    await tracker.next('activeSessionsData', { where: (d) => d.activeSessions.length === 1, what: 'its snapshot' });

    assert.deepEqual(courseEvents(tracker, back.seq), [
      ['courseSessionStarted', missedA], ['activeSessionsData', missedA],
      ['courseSessionEnded', missedA], ['activeSessionsData', ''],
      ['courseSessionStarted', missedB], ['activeSessionsData', missedB],
      ['courseSessionEnded', missedB], ['activeSessionsData', ''],
      ['activeSessionsData', ''], // the answer to the resubscription (no offset)
      ['courseSessionStarted', now.id], ['activeSessionsData', now.id],
    ], tracker.log.describe(30));
    assert.deepEqual(courseEvents(tracker, mark).slice(0, 1), [['courseSessionStarted', missedA]],
      'nothing of the missed sessions arrived before the reconnection');
    const all = offsets(tracker, 0);
    assert.equal(all.length, 4 + 8 + 2);
    for (let i = 1; i < all.length; i += 1) assert.ok(all[i] > all[i - 1], `offsets increase: ${all}`);
    assert.equal(tracker.log.since('activeSessionsError').length, 0);
    assert.notEqual(live, missedA);

    // The hook's state is the truth.
    const truth = await server.apiOk('GET', `/api/courses/${course}/active-sessions`, { token: teacher.token });
    assert.deepEqual(tracker.state.activeSessions, truth.activeSessions);
    await server.apiOk('POST', `/api/sessions/${now.id}/end`, { token: teacher.token });
  });
});

describe('connection state recovery after the window (RECOVERY_WINDOW_SECONDS=1)', () => {
  let server;
  const open = [];

  before(async () => {
    server = await startServer({ extraEnv: { RECOVERY_WINDOW_SECONDS: '1' } });
  });

  after(async () => {
    for (const t of open) t.cleanup();
    await server?.close();
  });

  it('a reconnect after the window: a fresh session, nothing replayed, the hook resubscribes', async () => {
    const { course: { id: course }, teacher, students } = server.demo;
    const student = students.find((s) => s.id === 'demo-student-2');
    const slow = { reconnectionDelay: 4000, reconnectionDelayMax: 4000, randomizationFactor: 0 };
    const tracker = trackCourse(server.url, course, student.token, { label: 'late', ioOptions: slow });
    open.push(tracker);
    await tracker.next('activeSessionsData', { what: 'first snapshot' });
    await upgraded(tracker.socket);

    tracker.socket.io.engine.close();
    const gone = await tracker.next('disconnect', { what: 'the blip' });
    const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: { topic: 'while away too long' } }, 201);

    const back = await tracker.next('connect', { where: (_, e) => e.seq > gone.seq, timeout: 15_000, what: 'reconnection' });
    assert.equal(tracker.socket.recovered, false, 'past the window: a new pid');
    const snapshot = await tracker.next('activeSessionsData', { where: (_, e) => e.seq > back.seq, what: 'resubscribed' });
    assert.deepEqual(snapshot.data.activeSessions.map((s) => s.sessionId), [session.id], 'the true state');
    assert.deepEqual(courseEvents(tracker, back.seq), [['activeSessionsData', session.id]],
      'no replay: only the snapshot of the resubscription');

    // Live events reach the new subscription.
    await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
    const ended = await tracker.next('courseSessionEnded', { what: 'live end' });
    assert.equal(ended.data.session_id, session.id);
    assert.match(ended.args[1], /^\d+$/);
  });
});
