// checkIn over the socket with the official socket.io-client (docs/protocol.md, "checkIn"):
// emitWithAck on both transports, the ack's record equal to what HTTP reads, the HTTP refusal's
// reason and detail in a refused ack, and the check-in seen by the course's other subscribers.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { io } from 'socket.io-client';

import { ISO_MS_Z, startServer } from './lib/harness.mjs';
import { connected, trackCourse } from './lib/tracker.mjs';

describe('checkIn over the socket (socket.io-client)', () => {
  let server;
  let demo;
  let course;
  let teacher;
  let students;
  let session;
  const open = [];

  before(async () => {
    server = await startServer();
    demo = server.demo;
    course = demo.course.id;
    teacher = demo.teacher;
    students = demo.students.filter((s) => s.enrollment === 'approved');
    assert.ok(students.length >= 2, `demo --json has two approved students: ${JSON.stringify(demo.students)}`);
    session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: { topic: 'socket check-in' } }, 201);
  });

  after(async () => {
    for (const t of open) {
      if (t.cleanup) t.cleanup();
      else t.disconnect();
    }
    await server?.close();
  });

  for (const [index, transports] of [[0, ['websocket']], [1, ['polling']]]) {
    it(`checks in with an ack over ${transports[0]}, and others see the count move`, async () => {
      const student = students[index];
      const watcher = trackCourse(server.url, course, teacher.token, { label: `teacher-${index}` });
      open.push(watcher);
      await watcher.next('activeSessionsData', { what: 'the teacher\'s snapshot' });
      const socket = io(server.url, { auth: { token: student.token }, forceNew: true, transports });
      open.push(socket);
      await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });

      const answer = await socket.timeout(5000).emitWithAck('checkIn', { session_id: session.id, device_id: `d-js-${index}` });
      assert.equal(answer.ok, true, JSON.stringify(answer));
      assert.equal(answer.record.user_id, student.id);
      assert.equal(answer.record.status, 'present');
      assert.equal(answer.record.marked_by, student.id);
      assert.match(answer.record.marked_at, ISO_MS_Z);
      // The record as HTTP reads it (the student's own session body), field for field.
      const body = await server.apiOk('GET', `/api/sessions/${session.id}`, { token: student.token });
      const own = body.records.find((r) => r.user_id === student.id);
      for (const field of ['user_id', 'name', 'status', 'marked_at', 'marked_by', 'remarks']) {
        assert.equal(answer.record[field], own[field], field);
      }
      const data = await watcher.next('activeSessionsData', { what: 'after the socket check-in' });
      assert.equal(data.data.activeSessions[0].studentCount, index + 1);

      const again = await socket.timeout(5000).emitWithAck('checkIn', { session_id: session.id });
      assert.deepEqual(again, answer, 'a repeat answers the same record');
    });
  }

  it('answers a refusal with the HTTP reason and detail, and the socket stays usable', async () => {
    const tracker = trackCourse(server.url, course, teacher.token, { label: 'teacher-refused', subscribe: false });
    open.push(tracker);
    await connected(tracker);
    const { socket } = tracker;
    const answer = await socket.timeout(5000).emitWithAck('checkIn', { session_id: session.id });
    const http = await server.api('POST', `/api/sessions/${session.id}/check-in`, { token: teacher.token });
    assert.equal(http.status, 403);
    assert.deepEqual(answer, { ok: false, reason: 'forbidden', message: http.body.detail });

    const malformed = await socket.timeout(5000).emitWithAck('checkIn', { session_id: session.id, code: 7 });
    assert.equal(malformed.ok, false);
    assert.equal(malformed.reason, 'invalid_payload');
    assert.match(malformed.message, /^code must be a string \(a number\)/);
  });
});
