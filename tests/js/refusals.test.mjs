// Refusals (CONTRACT.md): handshake errors with the exact connect_error messages, and
// activeSessionsError code "forbidden" for anyone without a relation to the course, the same
// answer as for a course that does not exist. A refused subscriber hears nothing afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { nowSeconds, signJwt, startServer } from './lib/harness.mjs';
import { assertNotReceived, connected, rawSocket, trackCourse } from './lib/tracker.mjs';

describe('refusals', () => {
  let server;
  let course;
  let strangerToken; // minted by `attendance-live token`: a real user with no relation to the course
  const open = [];

  before(async () => {
    server = await startServer();
    course = server.demo.course.id;
    strangerToken = await server.mintToken('stranger-1', { name: 'Stranger', role: 'student', ttl: 600 });
  });

  /** An error message with the course id it names taken out, to compare answers about two courses. */
  const generic = (message, courseId) => message.split(courseId).join('<course>');

  after(async () => {
    for (const s of open) (s.cleanup ?? s.close)();
    await server?.close();
  });

  /** Connect with these io options and return the connect_error, failing if it connects. */
  async function refusal(label, ioOptions) {
    const client = rawSocket(server.url, { label, reconnection: false, ...ioOptions });
    open.push(client);
    const event = await client.next(['connect_error', 'connect'], { what: 'handshake' });
    assert.equal(event.name, 'connect_error', `${label}: the server accepted the connection`);
    assert.equal(client.socket.connected, false);
    client.close();
    return event.data;
  }

  describe('handshake', () => {
    it('no auth at all -> "Authentication required"', async () => {
      const error = await refusal('no-auth', {});
      assert.equal(error.message, 'Authentication required');
    });

    it('auth without a token -> "Authentication required"', async () => {
      const error = await refusal('auth-empty', { auth: {} });
      assert.equal(error.message, 'Authentication required');
    });

    it('a garbage token -> "Invalid token"', async () => {
      const error = await refusal('garbage', { auth: { token: 'not-a-jwt' } });
      assert.equal(error.message, 'Invalid token');
    });

    it('a token signed with another secret -> "Invalid token"', async () => {
      const token = signJwt({ sub: 'demo-student-1', name: 'X', role: 'student', exp: nowSeconds() + 600 },
        'a-different-secret-that-is-long-enough-0123456789');
      const error = await refusal('wrong-secret', { auth: { token } });
      assert.equal(error.message, 'Invalid token');
    });

    it('an alg "none" token -> "Invalid token"', async () => {
      const token = signJwt({ sub: 'demo-teacher', role: 'admin', exp: nowSeconds() + 600 }, '', 'none');
      const error = await refusal('alg-none', { auth: { token } });
      assert.equal(error.message, 'Invalid token');
    });

    it('a token without exp -> "Invalid token" (exp is required)', async () => {
      const token = server.signToken({ sub: 'demo-student-1', name: 'No Exp', role: 'student' });
      const error = await refusal('no-exp', { auth: { token } });
      assert.equal(error.message, 'Invalid token');
    });

    it('an expired token (HS256, the server secret, exp in the past) -> "Token expired"', async () => {
      const token = server.signToken({
        sub: 'demo-student-1', name: 'Late', role: 'student', iat: nowSeconds() - 7200, exp: nowSeconds() - 3600,
      });
      const error = await refusal('expired', { auth: { token } });
      assert.equal(error.message, 'Token expired');
    });

    it('the same expired token is 401 over HTTP too', async () => {
      const token = server.signToken({ sub: 'demo-student-1', role: 'student', exp: nowSeconds() - 3600 });
      const res = await server.api('GET', `/api/courses/${course}/active-sessions`, { token });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    });

    it('a token the CLI minted is accepted (control)', async () => {
      const client = rawSocket(server.url, { label: 'cli-token', reconnection: false, auth: { token: strangerToken } });
      open.push(client);
      const event = await client.next(['connect', 'connect_error'], { what: 'handshake' });
      assert.equal(event.name, 'connect', `refused: ${event.data?.message}`);
      client.close();
    });
  });

  describe('forbidden', () => {
    let teacherWatcher;
    let pending;
    let stranger;
    let otherTeacher;
    let nowhere;
    const inAnHour = () => nowSeconds() + 3600;

    it('the pending student (demo-student-6) subscribing gets activeSessionsError "forbidden"', async () => {
      const six = server.demo.students.find((s) => s.id === 'demo-student-6');
      assert.ok(six, 'demo --json lists demo-student-6');
      assert.equal(six.enrollment, 'pending');
      pending = trackCourse(server.url, course, six.token, { label: 'pending' });
      open.push(pending);
      const answer = await pending.next(['activeSessionsError', 'activeSessionsData'], { what: 'subscribe' });
      assert.equal(answer.name, 'activeSessionsError', `pending student got ${JSON.stringify(answer.data)}`);
      assert.equal(answer.data.code, 'forbidden');
      assert.equal(answer.data.course_id, course);
      assert.equal(typeof answer.data.message, 'string');
      assert.ok(answer.data.message.length > 0);
      assert.equal(pending.socket.connected, true, 'the connection stays open');
    });

    it('a user with no relation to the course gets the same answer', async () => {
      stranger = trackCourse(server.url, course, strangerToken, { label: 'stranger' });
      open.push(stranger);
      const answer = await stranger.next(['activeSessionsError', 'activeSessionsData'], { what: 'subscribe' });
      assert.equal(answer.name, 'activeSessionsError', JSON.stringify(answer.data));
      assert.equal(answer.data.code, 'forbidden');
      const pendingAnswer = pending.log.since('activeSessionsError')[0].data;
      assert.deepEqual(answer.data, pendingAnswer, 'pending and unrelated users get one answer');
    });

    it('a teacher of no relation to the course is forbidden too (role does not grant access)', async () => {
      const token = server.signToken({ sub: 'other-teacher', name: 'Other Teacher', role: 'teacher', exp: inAnHour() });
      otherTeacher = trackCourse(server.url, course, token, { label: 'other-teacher' });
      open.push(otherTeacher);
      const answer = await otherTeacher.next(['activeSessionsError', 'activeSessionsData'], { what: 'subscribe' });
      assert.equal(answer.name, 'activeSessionsError', JSON.stringify(answer.data));
      assert.equal(answer.data.code, 'forbidden');
    });

    it('a course that does not exist gets the same answer as a forbidden one', async () => {
      nowhere = trackCourse(server.url, 'no-such-course', strangerToken, { label: 'nowhere' });
      open.push(nowhere);
      const answer = await nowhere.next(['activeSessionsError', 'activeSessionsData'], { what: 'subscribe' });
      assert.equal(answer.name, 'activeSessionsError', JSON.stringify(answer.data));
      const forbidden = stranger.log.since('activeSessionsError')[0].data;
      assert.equal(answer.data.code, forbidden.code);
      assert.equal(generic(answer.data.message, 'no-such-course'), generic(forbidden.message, course),
        'the same message (but for the id it names): existence is not revealed');
      assert.equal(answer.data.course_id, 'no-such-course');

      // The teacher asking about a course that does not exist: same answer as well.
      const teacherAsk = rawSocket(server.url, { label: 'teacher-ask', auth: { token: server.demo.teacher.token } });
      open.push(teacherAsk);
      const reply = await teacherAsk.roundTrip('subscribeToCourse', [{ course_id: 'no-such-course' }],
        ['activeSessionsError', 'activeSessionsData']);
      assert.equal(reply.name, 'activeSessionsError');
      assert.equal(generic(reply.data.message, 'no-such-course'), generic(forbidden.message, course));
      assert.equal(reply.data.code, 'forbidden');
    });

    it('checkActiveSessions by the pending student and the stranger: forbidden, never a response', async () => {
      for (const who of [pending, stranger]) {
        const answer = await who.roundTrip('checkActiveSessions', { course_id: course },
          ['activeSessionsError', 'activeSessionsResponse']);
        assert.equal(answer.name, 'activeSessionsError', `${who.log.label}: ${JSON.stringify(answer.data)}`);
        assert.equal(answer.data.code, 'forbidden');
      }
    });

    it('an admin (by role) may subscribe to any course (control)', async () => {
      const token = server.signToken({ sub: 'root', name: 'Root', role: 'admin', exp: inAnHour() });
      const admin = trackCourse(server.url, course, token, { label: 'admin' });
      open.push(admin);
      const answer = await admin.next(['activeSessionsError', 'activeSessionsData'], { what: 'subscribe' });
      assert.equal(answer.name, 'activeSessionsData', JSON.stringify(answer.data));
      assert.equal(answer.data.course_id, course);
    });

    it('refused subscribers hear nothing when a session starts and ends; the teacher does', async () => {
      teacherWatcher = trackCourse(server.url, course, server.demo.teacher.token, { label: 'teacher' });
      open.push(teacherWatcher);
      await teacherWatcher.next('activeSessionsData', { what: 'teacher snapshot' });
      await connected(pending);
      const marks = new Map([pending, stranger, otherTeacher, nowhere].map((t) => [t, t.log.mark]));

      const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
        { token: server.demo.teacher.token, body: {} }, 201);
      const started = await teacherWatcher.next('courseSessionStarted');
      assert.equal(started.data.session_id, session.id);
      await teacherWatcher.next('activeSessionsData');
      await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: server.demo.teacher.token });
      await teacherWatcher.next('courseSessionEnded');
      await teacherWatcher.next('activeSessionsData');

      for (const [who, mark] of marks) {
        await assertNotReceived(who, 'courseSessionStarted', mark, { why: 'refused subscriber' });
        for (const name of ['courseSessionEnded', 'activeSessionsData', 'activeSessionsResponse']) {
          assert.equal(who.log.since(name, mark).length, 0, `[${who.log.label}] must not receive ${name}`);
        }
      }
    });

    it('the pending student over HTTP: 403 (related but without the right); the stranger: 404', async () => {
      const six = server.demo.students.find((s) => s.id === 'demo-student-6');
      const asPending = await server.api('GET', `/api/courses/${course}/active-sessions`, { token: six.token });
      assert.equal(asPending.status, 403, JSON.stringify(asPending.body));
      const asStranger = await server.api('GET', `/api/courses/${course}/active-sessions`, { token: strangerToken });
      assert.equal(asStranger.status, 404, JSON.stringify(asStranger.body));
      const missing = await server.api('GET', '/api/courses/no-such-course/active-sessions', { token: strangerToken });
      assert.equal(missing.status, 404);
      assert.equal(generic(missing.body.detail, 'no-such-course'), generic(asStranger.body.detail, course),
        'same detail (but for the id it names) for unrelated and nonexistent');
    });
  });
});
