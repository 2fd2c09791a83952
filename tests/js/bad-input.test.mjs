// Bad input never hurts (CONTRACT.md): malformed payloads get activeSessionsError
// "invalid_payload" and the socket stays usable; unknown events are ignored; a message larger than
// the maximum (64 KiB) closes that one connection and no other client notices.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startServer } from './lib/harness.mjs';
import { assertNotReceived, connected, rawSocket, short, trackCourse } from './lib/tracker.mjs';

describe('bad input', () => {
  let server;
  let course;
  let teacher;
  let student;
  const open = [];

  before(async () => {
    server = await startServer();
    course = server.demo.course.id;
    teacher = server.demo.teacher;
    student = server.demo.students.find((s) => s.id === 'demo-student-2');
  });

  after(async () => {
    for (const s of open) (s.cleanup ?? s.close)();
    await server?.close();
  });

  // [label, arguments after the event name]
  const malformed = [
    ['no payload', []],
    ['a string', ['demo-course']],
    ['a number', [5]],
    ['null', [null]],
    ['an array', [['demo-course']]],
    ['{course_id: 5}', [{ course_id: 5 }]],
    ['{course_id: ""}', [{ course_id: '' }]],
    ['{course_id: "x" * 129}', [{ course_id: 'x'.repeat(129) }]],
    ['{course_id: {}}', [{ course_id: {} }]],
    ['{course_id: null}', [{ course_id: null }]],
    ['{course_id: ["demo-course"]}', [{ course_id: ['demo-course'] }]],
    ['{courseId: "demo-course"} (wrong key)', [{ courseId: 'demo-course' }]],
    ['a binary attachment as course_id', [{ course_id: Buffer.from('demo-course') }]],
  ];

  for (const event of ['subscribeToCourse', 'checkActiveSessions', 'unsubscribeFromCourse']) {
    it(`${event}: every malformed payload gets invalid_payload, then the same socket still works`, async () => {
      const client = rawSocket(server.url, { label: `${event}-bad`, auth: { token: student.token } });
      open.push(client);
      await connected(client);
      for (const [label, args] of malformed) {
        const reply = await client.roundTrip(event, args,
          ['activeSessionsError', 'activeSessionsData', 'activeSessionsResponse'], { what: label });
        assert.equal(reply.name, 'activeSessionsError', `${event} with ${label}: got ${reply.name} ${short(reply.data)}`);
        assert.equal(reply.data.code, 'invalid_payload', `${event} with ${label}: ${short(reply.data)}`);
        assert.equal(typeof reply.data.message, 'string', `${event} with ${label}: message is a string`);
        assert.ok(reply.data.message.length > 0, `${event} with ${label}: message is not empty`);
        assert.equal(reply.data.event, event, `${event} with ${label}: error names the event (INTERFACES-draft)`);
        assert.equal(client.socket.connected, true, `${event} with ${label}: still connected`);
      }
      assert.equal(client.log.since('disconnect').length, 0, 'never disconnected');

      // The same socket subscribes and asks successfully afterwards.
      const data = await client.roundTrip('subscribeToCourse', [{ course_id: course }],
        ['activeSessionsData', 'activeSessionsError']);
      assert.equal(data.name, 'activeSessionsData', short(data.data));
      assert.equal(data.data.course_id, course);
      const answer = await client.roundTrip('checkActiveSessions', [{ course_id: course }],
        ['activeSessionsResponse', 'activeSessionsError']);
      assert.equal(answer.name, 'activeSessionsResponse', short(answer.data));
    });
  }

  it('128 characters is still a valid course_id (an unknown course: forbidden, not invalid_payload)', async () => {
    const client = rawSocket(server.url, { label: 'boundary', auth: { token: student.token } });
    open.push(client);
    const reply = await client.roundTrip('subscribeToCourse', [{ course_id: 'x'.repeat(128) }],
      ['activeSessionsError', 'activeSessionsData']);
    assert.equal(reply.name, 'activeSessionsError');
    assert.equal(reply.data.code, 'forbidden', short(reply.data));
  });

  it('extra fields next to a valid course_id are accepted', async () => {
    const client = rawSocket(server.url, { label: 'extra-fields', auth: { token: student.token } });
    open.push(client);
    const reply = await client.roundTrip('subscribeToCourse', [{ course_id: course, extra: true }],
      ['activeSessionsError', 'activeSessionsData']);
    assert.equal(reply.name, 'activeSessionsData', short(reply.data));
  });

  it('unsubscribeFromCourse when not subscribed is not an error', async () => {
    const client = rawSocket(server.url, { label: 'unsub', auth: { token: student.token } });
    open.push(client);
    await connected(client);
    const mark = client.log.mark;
    client.socket.emit('unsubscribeFromCourse', { course_id: course });
    const reply = await client.roundTrip('checkActiveSessions', [{ course_id: course }],
      ['activeSessionsResponse', 'activeSessionsError']);
    assert.equal(reply.name, 'activeSessionsResponse', short(reply.data));
    assert.equal(client.log.since('activeSessionsError', mark).length, 0, 'no error for the unsubscribe');
  });

  it('an unknown event is ignored and the connection stays usable', async () => {
    const client = rawSocket(server.url, { label: 'unknown', auth: { token: student.token } });
    open.push(client);
    await connected(client);
    const mark = client.log.mark;
    client.socket.emit('noSuchEvent', { course_id: course });
    client.socket.emit('subscribe', 'demo-course');
    client.socket.emit('__proto__', {});
    const reply = await client.roundTrip('checkActiveSessions', [{ course_id: course }],
      ['activeSessionsResponse', 'activeSessionsError']);
    assert.equal(reply.name, 'activeSessionsResponse', short(reply.data));
    const between = client.log.events.filter((e) => e.seq >= mark && e.seq < reply.seq);
    assert.deepEqual(between.map((e) => e.name), [], 'nothing answered the unknown events');
    assert.equal(client.socket.connected, true);
  });

  it('an oversized long-polling POST is answered at once and closes that session (Engine.IO level)', async () => {
    // What socket.io-client does under the hood, spelled out, so the HTTP answer can be seen.
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const handshake = await fetch(base, { signal: AbortSignal.timeout(5000) });
    assert.equal(handshake.status, 200);
    const { sid } = JSON.parse((await handshake.text()).slice(1));
    const connect = await fetch(`${base}&sid=${sid}`, {
      method: 'POST', body: `40${JSON.stringify({ token: student.token })}`, signal: AbortSignal.timeout(5000),
    });
    assert.equal(connect.status, 200);
    const welcome = await (await fetch(`${base}&sid=${sid}`, { signal: AbortSignal.timeout(5000) })).text();
    assert.match(welcome, /^40\{"sid":/, 'Socket.IO CONNECT accepted');

    const body = `42${JSON.stringify(['subscribeToCourse', { course_id: 'x'.repeat(70 * 1024) }])}`;
    let answer;
    try {
      answer = await fetch(`${base}&sid=${sid}`, { method: 'POST', body, signal: AbortSignal.timeout(3000) });
    } catch (error) {
      assert.fail(`the oversized POST (${body.length} bytes) got no HTTP answer within 3 s (${error.name}); ` +
        'the request stays open on the server (and holds up a graceful shutdown)');
    }
    assert.ok(answer.status >= 400 && answer.status < 500, `oversized POST answered ${answer.status}`);
    const after = await fetch(`${base}&sid=${sid}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(after.status, 400, 'the session is closed: a later poll is refused');
  });

  for (const transport of ['websocket', 'polling']) {
    it(`a message over 64 KiB (${transport}) closes that connection only; another client keeps receiving`, async () => {
      const other = trackCourse(server.url, course, teacher.token, { label: `other-${transport}` });
      open.push(other);
      await other.next('activeSessionsData', { what: 'snapshot' });

      const big = trackCourse(server.url, course, student.token, {
        label: `big-${transport}`, ioOptions: { transports: [transport], upgrade: false },
      });
      open.push(big);
      await big.next('activeSessionsData', { what: 'snapshot' });
      assert.equal(big.socket.io.engine.transport.name, transport);

      const otherMark = other.log.mark;
      big.socket.emit('subscribeToCourse', { course_id: 'x'.repeat(70 * 1024) });
      const closed = await big.next('disconnect', { what: 'the server closes an oversized message' });
      assert.equal(typeof closed.data, 'string');
      assert.equal(big.log.since('activeSessionsData', closed.seq).length, 0);

      // The other client did not notice: still connected, still answered.
      await assertNotReceived(other, 'activeSessionsError', otherMark, { why: 'it did nothing wrong' });
      assert.equal(other.socket.connected, true);

      // As the seed's hook would: the closed client reconnects by itself and re-subscribes.
      const reconnected = await big.next('connect', {
        where: (_, e) => e.seq > closed.seq, timeout: 15_000, what: 'automatic reconnection',
      });
      const again = await big.next('activeSessionsData', { what: 're-subscribe after reconnection' });
      assert.ok(again.seq > reconnected.seq);
      assert.equal(again.data.course_id, course);
      assert.deepEqual(again.data.activeSessions, []);

      // Both keep receiving broadcasts.
      const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
        { token: teacher.token, body: {} }, 201);
      for (const who of [other, big]) {
        const started = await who.next('courseSessionStarted');
        assert.equal(started.data.session_id, session.id);
        await who.next('activeSessionsData');
      }
      await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher.token });
      for (const who of [other, big]) {
        await who.next('courseSessionEnded');
        await who.next('activeSessionsData');
      }
      assert.equal(other.log.since('disconnect', otherMark).length, 0, 'the other client was never disconnected');
      big.cleanup();
      other.cleanup();
    });
  }
});
