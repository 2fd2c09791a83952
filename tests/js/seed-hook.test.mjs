// The seed's own hook code (seed/useCourseSessionTracking.js, verbatim), run in Node against a
// server filled by `attendance-live demo`: it connects, sees a session start and end, and cleans up.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startServer } from './lib/harness.mjs';
import { mountSeedHook } from './lib/seed-hook.mjs';
import { EventLog } from './lib/tracker.mjs';

describe('the seed hook, verbatim', () => {
  let server;
  let hook;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    hook?.unmount();
    await server?.close();
  });

  it('sees a session start and end as the seed describes', async () => {
    const { course: { id: course }, teacher, students } = server.demo;
    const student = students.find((s) => s.enrollment === 'approved');

    hook = mountSeedHook(server.url, course, student.token);
    assert.equal(hook.result.isConnected, false);
    assert.deepEqual(hook.result.activeSessions, []);

    // Observe the hook's socket (the hook publishes it with setSocket) without changing it.
    const withSocket = await hook.waitFor((r) => r.socket !== null, { what: 'socket set' });
    const log = new EventLog('seed-hook');
    withSocket.socket.onAny((name, ...args) => log.push(name, args));

    await hook.waitFor((r) => r.isConnected === true, { what: 'isConnected' });
    const snapshot = await log.next('activeSessionsData', { what: 'snapshot after subscribe on connect' });
    assert.equal(snapshot.data.course_id, course);
    assert.deepEqual(snapshot.data.activeSessions, []);
    await hook.waitFor((r) => r.activeSessions === snapshot.data.activeSessions, { what: 'the snapshot stored' });
    assert.equal(hook.result.hasActiveSessions, false);

    const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: {} }, 201);
    const live = await hook.waitFor((r) => r.hasActiveSessions, { what: 'hasActiveSessions' });
    assert.equal(live.activeSessions.length, 1);
    assert.equal(live.activeSessions[0].sessionId, session.id);
    assert.equal(live.activeSessions[0].studentCount, 0);
    // What the seed's component shows for it.
    assert.ok(!Number.isNaN(new Date(live.activeSessions[0].startedAt).getTime()), 'Started: is a valid date');
    const startedLog = hook.logs.find((l) => l.args[0] === 'Session started:');
    assert.ok(startedLog, `the hook's courseSessionStarted listener ran; logs: ${JSON.stringify(hook.logs)}`);
    assert.equal(startedLog.args[1].session_id, session.id);
    assert.equal(startedLog.args[1].started_by, teacher.name);

    await server.apiOk('POST', `/api/sessions/${session.id}/check-in`, { token: student.token });
    await hook.waitFor((r) => r.activeSessions[0]?.studentCount === 1, { what: 'studentCount 1' });

    const from = hook.renders.length;
    await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
    const done = await hook.waitFor((r) => !r.hasActiveSessions, { what: 'no active session', from });
    assert.deepEqual(done.activeSessions, []);
    const endedLog = hook.logs.find((l) => l.args[0] === 'Session ended:');
    assert.ok(endedLog, "the hook's courseSessionEnded listener ran");
    assert.equal(endedLog.args[1].session_id, session.id);
    assert.equal(endedLog.args[1].ended_by, teacher.name);
    assert.deepEqual(
      ['present', 'absent', 'total'].map((k) => endedLog.args[1].final_statistics[k]), [1, 4, 5]);
    assert.deepEqual(hook.logs.filter((l) => l.level === 'error'), [], 'no activeSessionsError reached the hook');
    // The seed's five events only: the server may add events of its own (extra events are not
    // an error for a seed client, which ignores what it does not listen to).
    const seedEvents = new Set(['courseSessionStarted', 'courseSessionEnded', 'activeSessionsData',
      'activeSessionsResponse', 'activeSessionsError']);
    const order = log.events.map((e) => e.name).filter((name) => seedEvents.has(name));
    assert.deepEqual(order, [
      'activeSessionsData', // snapshot
      'courseSessionStarted', 'activeSessionsData',
      'activeSessionsData', // check-in
      'courseSessionEnded', 'activeSessionsData',
    ], 'exactly these events, in this order');

    // Unmount: the hook's cleanup unsubscribes and disconnects.
    const socket = hook.result.socket;
    hook.unmount();
    hook = null;
    assert.equal(socket.connected, false);
  });
});
