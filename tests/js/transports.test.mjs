// The main flow over each transport alone: websocket only, and long-polling only (no upgrade).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ISO_MS_Z, startServer } from './lib/harness.mjs';
import { assertNotReceived, trackCourse } from './lib/tracker.mjs';

describe('both transports', () => {
  let server;
  const open = [];

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    for (const t of open) t.cleanup();
    await server?.close();
  });

  for (const transport of ['websocket', 'polling']) {
    it(`main flow with transports: ['${transport}']`, async () => {
      const { course: { id: course }, teacher } = server.demo;
      const student = server.demo.students.find((s) => s.id === 'demo-student-3');
      const ioOptions = { transports: [transport], upgrade: false };
      const watcher = trackCourse(server.url, course, student.token, { label: `student-${transport}`, ioOptions });
      const asker = trackCourse(server.url, course, teacher.token, { label: `teacher-${transport}`, ioOptions });
      open.push(watcher, asker);
      let upgraded = false;
      watcher.socket.io.on('open', () => {
        watcher.socket.io.engine.on('upgrade', () => { upgraded = true; });
      });

      const snapshot = await watcher.next('activeSessionsData', { what: 'snapshot' });
      assert.deepEqual(snapshot.data.activeSessions, []);
      assert.equal(snapshot.data.course_id, course);
      await asker.next('activeSessionsData', { what: 'snapshot' });

      const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
        { token: teacher.token, body: {} }, 201);
      const started = await watcher.next('courseSessionStarted');
      const afterStart = await watcher.next('activeSessionsData');
      assert.ok(started.seq < afterStart.seq, 'started, then data');
      assert.equal(started.data.session_id, session.id);
      assert.equal(started.data.teacher_id, teacher.id);
      assert.equal(started.data.started_by, teacher.name);
      assert.match(started.data.started_at, ISO_MS_Z);
      assert.deepEqual(afterStart.data.activeSessions.map((s) => [s.sessionId, s.teacherId, s.studentCount]),
        [[session.id, teacher.id, 0]]);

      await server.apiOk('POST', `/api/sessions/${session.id}/check-in`, { token: student.token });
      const afterCheckIn = await watcher.next('activeSessionsData', { what: 'after check-in' });
      assert.equal(afterCheckIn.data.activeSessions[0].studentCount, 1);

      const watcherMark = watcher.log.mark;
      const answer = await asker.roundTrip('checkActiveSessions', { course_id: course },
        ['activeSessionsResponse', 'activeSessionsError']);
      assert.equal(answer.name, 'activeSessionsResponse');
      assert.equal(answer.data.activeSessions[0].studentCount, 1);
      await assertNotReceived(watcher, 'activeSessionsResponse', watcherMark, { via: 'subscribe', why: 'not the asker' });

      const ack = await watcher.socket.timeout(5000).emitWithAck('checkActiveSessions', { course_id: course });
      assert.deepEqual(ack, answer.data, 'ack payload equals activeSessionsResponse');

      const ended = await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
      const endEvent = await watcher.next('courseSessionEnded');
      const afterEnd = await watcher.next('activeSessionsData');
      assert.ok(endEvent.seq < afterEnd.seq, 'ended, then data');
      assert.equal(endEvent.data.session_id, session.id);
      assert.equal(endEvent.data.ended_by, teacher.name);
      assert.equal(endEvent.data.ended_at, ended.ended_at);
      assert.equal(endEvent.data.final_statistics.present, 1);
      assert.equal(endEvent.data.final_statistics.absent, 4);
      assert.equal(endEvent.data.final_statistics.total, 5);
      assert.deepEqual(afterEnd.data.activeSessions, []);

      assert.equal(watcher.socket.io.engine.transport.name, transport, 'still on the one transport');
      assert.equal(upgraded, false, 'no upgrade happened');
      assert.equal(watcher.log.since('disconnect').length, 0);
      watcher.cleanup();
      asker.cleanup();
    });
  }

  it('default transports upgrade from polling to websocket', async () => {
    const { course: { id: course }, teacher } = server.demo;
    const watcher = trackCourse(server.url, course, teacher.token, { label: 'default' });
    open.push(watcher);
    await watcher.next('activeSessionsData', { what: 'snapshot' });
    const engine = watcher.socket.io.engine;
    if (engine.transport.name !== 'websocket') {
      await new Promise((resolveUpgrade, reject) => {
        const timer = setTimeout(() => reject(new Error(
          `no upgrade to websocket within 5000 ms (still ${engine.transport.name})`)), 5000);
        engine.once('upgrade', () => { clearTimeout(timer); resolveUpgrade(); });
      });
    }
    assert.equal(engine.transport.name, 'websocket');
    const answer = await watcher.roundTrip('checkActiveSessions', { course_id: course }, 'activeSessionsResponse');
    assert.equal(answer.data.course_id, course);
    watcher.cleanup();
  });
});
