// After a server restart (SIGTERM, then serve again on the same port and database) the seed hook's
// client reconnects by itself, re-subscribes on 'connect', and gets a true snapshot: the session
// that was active before, with its real studentCount, from the database.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startServer } from './lib/harness.mjs';
import { trackCourse } from './lib/tracker.mjs';

const RECONNECT_WAIT_MS = 20_000;

describe('server restart', () => {
  let server;
  const open = [];

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const t of open) t.cleanup();
    await server?.close();
  });

  it('the client reconnects, re-subscribes and gets the active session with its real studentCount', async () => {
    const { course: { id: course }, teacher, students } = server.demo;
    const [s1, s2, s3] = ['demo-student-1', 'demo-student-2', 'demo-student-3']
      .map((id) => students.find((s) => s.id === id));

    // Seed defaults: polling, then upgrade to websocket; reconnection on.
    const watcher = trackCourse(server.url, course, s1.token, { label: 'student-1' });
    open.push(watcher);
    await watcher.next('activeSessionsData', { what: 'first snapshot' });

    const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: { topic: 'before the restart' } }, 201);
    await watcher.next('courseSessionStarted');
    await watcher.next('activeSessionsData', { what: 'after start' });
    for (const [i, student] of [s1, s2].entries()) {
      await server.apiOk('POST', `/api/sessions/${session.id}/check-in`, { token: student.token });
      const data = await watcher.next('activeSessionsData', { what: `after check-in ${i + 1}` });
      assert.equal(data.data.activeSessions[0].studentCount, i + 1);
    }
    const beforeRestart = watcher.state.activeSessions[0];
    const firstConnects = watcher.log.since('connect').length;
    const mark = watcher.log.mark;

    const stopped = await server.restart();
    assert.equal(stopped.killed, false,
      `the server did not exit within 10 s of SIGTERM (took ${stopped.ms} ms; had to SIGKILL it)`);

    const disconnect = await watcher.next('disconnect', { what: 'server stopped' });
    assert.ok(disconnect.seq >= mark);
    const reconnect = await watcher.next('connect', {
      where: (_, e) => e.seq > disconnect.seq, timeout: RECONNECT_WAIT_MS, what: 'automatic reconnection',
    });
    assert.equal(watcher.log.since('connect').length, firstConnects + 1);
    const snapshot = await watcher.next('activeSessionsData', { what: 're-subscribe snapshot after restart' });
    assert.ok(snapshot.seq > reconnect.seq, 'the snapshot answers the re-subscribe');
    assert.equal(snapshot.data.course_id, course);
    assert.equal(snapshot.data.activeSessions.length, 1, JSON.stringify(snapshot.data));
    const item = snapshot.data.activeSessions[0];
    assert.equal(item.sessionId, session.id, 'the same session survived the restart');
    assert.equal(item.teacherId, teacher.id);
    assert.equal(item.studentCount, 2, 'its real studentCount, from the database');
    assert.equal(item.startedAt, beforeRestart.startedAt);
    assert.deepEqual(watcher.state.activeSessions, snapshot.data.activeSessions, 'the hook state is the snapshot');
    const truth = await server.apiOk('GET', `/api/courses/${course}/active-sessions`, { token: teacher.token });
    assert.deepEqual(snapshot.data, truth, 'the snapshot equals what the HTTP API says');
    assert.equal(watcher.log.since('activeSessionsError', mark).length, 0);

    // Live updates keep flowing on the new connection.
    await server.apiOk('POST', `/api/sessions/${session.id}/check-in`, { token: s3.token });
    const afterCheckIn = await watcher.next('activeSessionsData', { what: 'check-in after restart' });
    assert.equal(afterCheckIn.data.activeSessions[0].studentCount, 3);

    const ended = await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
    const endEvent = await watcher.next('courseSessionEnded');
    assert.deepEqual(
      { present: endEvent.data.final_statistics.present, absent: endEvent.data.final_statistics.absent,
        total: endEvent.data.final_statistics.total },
      { present: 3, absent: 2, total: 5 });
    assert.equal(endEvent.data.ended_at, ended.ended_at);
    const empty = await watcher.next('activeSessionsData', { what: 'after end' });
    assert.deepEqual(empty.data.activeSessions, []);
    watcher.cleanup();
  });

  it('a client started while the server is down connects once it is back, and gets a snapshot', async () => {
    const { course: { id: course }, teacher } = server.demo;
    await server.stop();
    const watcher = trackCourse(server.url, course, teacher.token, { label: 'early-bird' });
    open.push(watcher);
    await watcher.next('connect_error', { what: 'server is down' });
    await server.start();
    await watcher.next('connect', { timeout: RECONNECT_WAIT_MS, what: 'connect after the server is back' });
    const snapshot = await watcher.next('activeSessionsData', { what: 'snapshot' });
    assert.equal(snapshot.data.course_id, course);
    // The truth, as the HTTP API tells it (the same body as activeSessionsData).
    const truth = await server.apiOk('GET', `/api/courses/${course}/active-sessions`, { token: teacher.token });
    assert.deepEqual(snapshot.data, truth);
    watcher.cleanup();
  });
});
