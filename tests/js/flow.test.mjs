// The seed hook's main flow against the real server (CONTRACT.md, "Socket.IO"):
// snapshot on subscribe, start, check-in, checkActiveSessions (asker only), acknowledgements, end.
// The steps share one server and one session, so they run in order.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ISO_MS_Z, startServer } from './lib/harness.mjs';
import { assertNotReceived, connected, trackCourse } from './lib/tracker.mjs';

describe('seed hook main flow (default transports: polling, then upgrade to websocket)', () => {
  let server;
  let demo;
  let course;
  let teacher;
  let student; // demo-student-1, approved
  let watcher; // the seed hook for demo-student-1
  let teacherWatcher; // the seed hook for the teacher
  let bystander; // the teacher, connected but not subscribed to anything
  let session; // body of POST /sessions
  const open = [];

  before(async () => {
    server = await startServer();
    demo = server.demo;
    course = demo.course.id;
    teacher = demo.teacher;
    student = demo.students.find((s) => s.id === 'demo-student-1');
    assert.ok(student, `demo --json has no demo-student-1: ${JSON.stringify(demo.students.map((s) => s.id))}`);
  });

  after(async () => {
    for (const t of open) t.cleanup();
    await server?.close();
  });

  it('1. connects with auth.token, subscribes on connect, gets the course snapshot (empty)', async () => {
    watcher = trackCourse(server.url, course, student.token, { label: 'student-1' });
    teacherWatcher = trackCourse(server.url, course, teacher.token, { label: 'teacher' });
    open.push(watcher, teacherWatcher);

    const first = await watcher.next('activeSessionsData', { what: 'snapshot after subscribeToCourse' });
    assert.deepEqual(first.data, { ...first.data, course_id: course, activeSessions: [] },
      'the snapshot names the course and lists no active session yet');
    assert.ok(Array.isArray(first.data.activeSessions), 'activeSessions is an array');
    assert.equal(first.data.activeSessions.length, 0);
    assert.equal(watcher.state.isConnected, true);
    assert.deepEqual(watcher.state.activeSessions, [], 'the hook stored the snapshot');
    // The snapshot came after connect and no error came with it.
    const connect = watcher.log.events.find((e) => e.name === 'connect');
    assert.ok(connect && connect.seq < first.seq, 'connect precedes the snapshot');
    assert.equal(watcher.log.since('activeSessionsError').length, 0, 'no activeSessionsError');

    const teacherFirst = await teacherWatcher.next('activeSessionsData', { what: 'teacher snapshot' });
    assert.equal(teacherFirst.data.course_id, course);
    assert.deepEqual(teacherFirst.data.activeSessions, []);

    // A socket that never subscribes: must hear nothing about the course later.
    bystander = trackCourse(server.url, course, teacher.token, { label: 'bystander', subscribe: false });
    open.push(bystander);
    await connected(bystander);
  });

  it('2. a session started over HTTP arrives as courseSessionStarted, then activeSessionsData (studentCount 0)', async () => {
    const bystanderMark = bystander.log.mark;
    session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher.token, body: { topic: 'JS conformance' } }, 201);
    assert.equal(typeof session.id, 'string', 'session id is a string');
    assert.equal(session.status, 'active');

    const started = await watcher.next('courseSessionStarted');
    const data = await watcher.next('activeSessionsData', { what: 'after courseSessionStarted' });
    assert.ok(started.seq < data.seq, 'courseSessionStarted comes before activeSessionsData');

    const payload = started.data;
    for (const field of ['course_id', 'session_id', 'teacher_id', 'teacher_name', 'started_by', 'started_at']) {
      assert.ok(field in payload, `courseSessionStarted has ${field}: ${JSON.stringify(payload)}`);
    }
    assert.equal(payload.course_id, course);
    assert.equal(payload.session_id, session.id, 'session_id is the id the HTTP API returned');
    assert.equal(payload.teacher_id, teacher.id);
    assert.equal(payload.teacher_name, teacher.name);
    assert.equal(payload.started_by, teacher.name, 'started_by is the display name of who started it');
    assert.match(payload.started_at, ISO_MS_Z, 'started_at is UTC ISO 8601 with ms and Z');
    assert.equal(payload.started_at, session.started_at, 'started_at equals the HTTP body');
    assert.ok(Math.abs(Date.parse(payload.started_at) - Date.now()) < 60_000, 'started_at is now');
    assert.equal(payload.topic, 'JS conformance', 'courseSessionStarted carries topic (INTERFACES-draft)');

    assert.equal(data.data.course_id, course);
    assert.equal(data.data.activeSessions.length, 1, JSON.stringify(data.data));
    const [item] = data.data.activeSessions;
    assert.equal(item.sessionId, session.id);
    assert.equal(item.teacherId, teacher.id);
    assert.equal(item.studentCount, 0);
    assert.equal(item.startedAt, payload.started_at);
    assert.deepEqual(watcher.state.activeSessions, data.data.activeSessions, 'the hook state follows');
    assert.equal(watcher.hasActiveSessions, true);

    // The teacher's subscribed socket got the same pair, in the same order.
    const tStarted = await teacherWatcher.next('courseSessionStarted');
    const tData = await teacherWatcher.next('activeSessionsData');
    assert.ok(tStarted.seq < tData.seq);
    assert.deepEqual(tStarted.data, payload);
    assert.deepEqual(tData.data, data.data);

    // A connected socket that is not in the course's room heard nothing.
    await assertNotReceived(bystander, 'courseSessionStarted', bystanderMark, { why: 'not subscribed' });
    assert.equal(bystander.log.since('activeSessionsData', bystanderMark).length, 0, 'no activeSessionsData either');
  });

  it('3. a student check-in over HTTP moves studentCount to 1', async () => {
    const record = await server.apiOk('POST', `/api/sessions/${session.id}/check-in`, { token: student.token });
    assert.equal(record.user_id, student.id);
    assert.equal(record.status, 'present');

    const data = await watcher.next('activeSessionsData', { what: 'after check-in' });
    assert.equal(data.data.course_id, course);
    assert.equal(data.data.activeSessions.length, 1);
    assert.equal(data.data.activeSessions[0].sessionId, session.id);
    assert.equal(data.data.activeSessions[0].studentCount, 1);
    assert.equal(data.data.activeSessions[0].startedAt, session.started_at, 'startedAt does not move');

    const tData = await teacherWatcher.next('activeSessionsData', { what: 'teacher, after check-in' });
    assert.deepEqual(tData.data, data.data);
    assert.equal(watcher.state.activeSessions[0].studentCount, 1);
  });

  it('4. checkActiveSessions is answered with activeSessionsResponse to the asker only', async () => {
    const teacherMark = teacherWatcher.log.mark;
    const answer = await watcher.roundTrip('checkActiveSessions', { course_id: course },
      ['activeSessionsResponse', 'activeSessionsError']);
    assert.equal(answer.name, 'activeSessionsResponse', JSON.stringify(answer.data));
    assert.equal(answer.data.course_id, course);
    assert.equal(answer.data.activeSessions.length, 1);
    assert.equal(answer.data.activeSessions[0].sessionId, session.id);
    assert.equal(answer.data.activeSessions[0].teacherId, teacher.id);
    assert.equal(answer.data.activeSessions[0].studentCount, 1);
    assert.equal(answer.data.activeSessions[0].startedAt, session.started_at);

    // Same shape as the room's last activeSessionsData.
    assert.deepEqual(answer.data, watcher.log.since('activeSessionsData').at(-1).data);

    await assertNotReceived(teacherWatcher, 'activeSessionsResponse', teacherMark,
      { via: 'subscribe', why: 'another socket in the same room asked' });
    // Asking is not a change: nobody got a broadcast for it.
    const teacherDataSince = teacherWatcher.log.since('activeSessionsData', teacherMark);
    assert.equal(teacherDataSince.length, 1, 'the teacher saw only its own barrier re-subscribe snapshot');
  });

  it('8. acknowledgement callbacks get the same payload as the answering event', async () => {
    const mark = watcher.log.mark;
    const ack = await watcher.socket.timeout(5000).emitWithAck('checkActiveSessions', { course_id: course });
    assert.equal(ack.course_id, course, `ack payload: ${JSON.stringify(ack)}`);
    assert.equal(ack.activeSessions.length, 1);
    assert.equal(ack.activeSessions[0].studentCount, 1);
    // CONTRACT.md sends the answering event unconditionally; the ack is an addition (INTERFACES-draft),
    // so a client that passes an ack still gets the event, with the same payload.
    const event = await watcher.next('activeSessionsResponse', { what: 'event next to the ack' });
    assert.ok(event.seq >= mark);
    assert.deepEqual(event.data, ack, 'ack payload equals the activeSessionsResponse payload');

    const subAck = await watcher.socket.timeout(5000).emitWithAck('subscribeToCourse', { course_id: course });
    const subData = await watcher.next('activeSessionsData', { what: 'subscribe with ack' });
    assert.deepEqual(subAck, subData.data, 'subscribeToCourse ack equals the activeSessionsData sent');

    const errAck = await watcher.socket.timeout(5000).emitWithAck('checkActiveSessions', 5);
    assert.equal(errAck.code, 'invalid_payload', `error ack: ${JSON.stringify(errAck)}`);
    assert.equal(typeof errAck.message, 'string');
    const errEvent = await watcher.next('activeSessionsError', { what: 'error event with ack' });
    assert.deepEqual(errEvent.data, errAck, 'error ack equals the activeSessionsError payload');
  });

  it('5. ending arrives as courseSessionEnded with final_statistics, then an empty activeSessionsData', async () => {
    const ended = await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
    assert.equal(ended.status, 'ended');

    const endEvent = await watcher.next('courseSessionEnded');
    const data = await watcher.next('activeSessionsData', { what: 'after courseSessionEnded' });
    assert.ok(endEvent.seq < data.seq, 'courseSessionEnded comes before activeSessionsData');

    const payload = endEvent.data;
    for (const field of ['course_id', 'session_id', 'teacher_id', 'teacher_name', 'final_statistics', 'ended_by', 'ended_at']) {
      assert.ok(field in payload, `courseSessionEnded has ${field}: ${JSON.stringify(payload)}`);
    }
    assert.equal(payload.course_id, course);
    assert.equal(payload.session_id, session.id);
    assert.equal(payload.teacher_id, teacher.id);
    assert.equal(payload.teacher_name, teacher.name);
    assert.equal(payload.ended_by, teacher.name);
    assert.match(payload.ended_at, ISO_MS_Z);
    assert.equal(payload.ended_at, ended.ended_at, 'ended_at equals the HTTP body');
    assert.ok(Date.parse(payload.ended_at) >= Date.parse(session.started_at));

    const approved = demo.students.filter((s) => s.enrollment === 'approved').length;
    assert.equal(approved, 5, 'the demo roster has 5 approved students');
    const stats = payload.final_statistics;
    assert.equal(stats.present, 1, `final_statistics: ${JSON.stringify(stats)}`);
    assert.equal(stats.absent, 4);
    assert.equal(stats.total, 5);
    assert.deepEqual(stats, ended.final_statistics, 'final_statistics equals the HTTP body');

    assert.deepEqual(data.data, { ...data.data, course_id: course, activeSessions: [] });
    assert.deepEqual(watcher.state.activeSessions, []);
    assert.equal(watcher.hasActiveSessions, false);

    const tEnd = await teacherWatcher.next('courseSessionEnded');
    const tData = await teacherWatcher.next('activeSessionsData');
    assert.ok(tEnd.seq < tData.seq);
    assert.deepEqual(tEnd.data, payload);
    assert.deepEqual(tData.data.activeSessions, []);

    // Exactly one of each per subscriber: no duplicate broadcast (the barrier flushes stragglers).
    await assertNotReceived(watcher, 'courseSessionEnded', endEvent.seq + 1, { why: 'sent once' });
    for (const who of [watcher, teacherWatcher]) {
      assert.equal(who.log.since('courseSessionStarted').length, 1, `[${who.log.label}] one courseSessionStarted`);
      assert.equal(who.log.since('courseSessionEnded').length, 1, `[${who.log.label}] one courseSessionEnded`);
    }

    // Nothing about the course reached the socket that never subscribed.
    assert.equal(bystander.log.since('courseSessionEnded').length, 0);
    assert.equal(bystander.log.since('courseSessionStarted').length, 0);

    // Cleanup as the hook does: unsubscribe then disconnect, without an error.
    const mark = watcher.log.mark;
    watcher.cleanup();
    await watcher.next('disconnect', { what: 'cleanup' });
    assert.equal(watcher.log.since('activeSessionsError', mark).length, 0);
  });
});
