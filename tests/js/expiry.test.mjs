// Tokens that end (CONTRACT.md "Identity, continued"): at the token's exp the server sends
// tokenExpired {expired_at} and disconnects the socket ("io server disconnect"); refreshToken
// {token} with a fresh token of the same user moves the deadline (tokenRefreshed {expires_at});
// a client using the `auth` callback form reconnects with a new token as any new connection does.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ISO_MS_Z, nowSeconds, startServer } from './lib/harness.mjs';
import { connected, rawSocket } from './lib/tracker.mjs';

const SHORT_TTL = 3; // seconds: long enough to connect and subscribe, short enough to wait for

const expIso = (token) => {
  const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  return new Date(exp * 1000).toISOString();
};

describe('token expiry on live sockets', () => {
  let server;
  let course;
  let teacher;
  const open = [];

  before(async () => {
    server = await startServer();
    course = server.demo.course.id;
    teacher = server.demo.teacher.token;
  });

  after(async () => {
    for (const s of open) s.close();
    await server?.close();
  });

  /** A token signed here (no CLI start-up), so that its few seconds are not spent minting it. */
  const shortLived = (sub) => server.signToken({ sub, name: sub, role: 'student', exp: nowSeconds() + SHORT_TTL });

  /** A socket whose handshake auth is the callback form, reading the current token each time. */
  function withCallback(label, tokens) {
    let calls = 0;
    const client = rawSocket(server.url, {
      label,
      reconnection: false,
      auth: (cb) => {
        calls += 1;
        cb({ token: tokens.current });
      },
    });
    open.push(client);
    client.authCalls = () => calls;
    client.courseId = course;
    return client;
  }

  async function subscribe(client) {
    const snapshot = await client.roundTrip('subscribeToCourse', [{ course_id: course }],
      ['activeSessionsData', 'activeSessionsError']);
    assert.equal(snapshot.name, 'activeSessionsData', JSON.stringify(snapshot.data));
  }

  it('expires, is disconnected by the server, and reconnects with a new token from the auth callback', async () => {
    const tokens = { current: shortLived('demo-student-1') };
    const first = tokens.current;
    const client = withCallback('expiring', tokens);
    await connected(client);
    await subscribe(client);

    const expired = await client.next('tokenExpired', { timeout: (SHORT_TTL + 5) * 1000 });
    assert.deepEqual(expired.data, { expired_at: expIso(first) });
    assert.match(expired.data.expired_at, ISO_MS_Z);
    const gone = await client.next('disconnect');
    assert.equal(gone.data, 'io server disconnect');
    assert.ok(expired.seq < gone.seq, 'tokenExpired comes before the disconnect');
    assert.equal(client.socket.connected, false);

    // The application signs in again and reconnects: the callback hands over the new token.
    tokens.current = await server.mintToken('demo-student-1', { ttl: 600 });
    client.socket.connect();
    await client.next('connect');
    assert.equal(client.authCalls(), 2);
    await subscribe(client);
    const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher, body: { topic: 'After reconnect' } }, 201);
    const started = await client.next('courseSessionStarted');
    assert.equal(started.data.session_id, session.id);
    await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher });
  });

  it('refreshToken moves the deadline; another user\'s token is refused and changes nothing', async () => {
    const someoneElse = await server.mintToken('demo-student-4', { ttl: 600 });
    const fresh = await server.mintToken('demo-student-2', { ttl: 600 });
    const keeps = withCallback('refreshes', { current: shortLived('demo-student-2') });
    const lapses = withCallback('lapses', { current: shortLived('demo-student-3') });
    await Promise.all([connected(keeps), connected(lapses)]);
    await subscribe(keeps);
    await subscribe(lapses);

    const refused = await keeps.roundTrip('refreshToken', [{ token: someoneElse }], 'activeSessionsError');
    assert.equal(refused.data.code, 'forbidden');
    const malformed = await keeps.roundTrip('refreshToken', [{ token: 42 }], 'activeSessionsError');
    assert.equal(malformed.data.code, 'invalid_payload');

    const refreshed = await keeps.roundTrip('refreshToken', [{ token: fresh }], 'tokenRefreshed');
    assert.deepEqual(refreshed.data, { expires_at: expIso(fresh) });

    await lapses.next('tokenExpired', { timeout: (SHORT_TTL + 5) * 1000 }); // the old deadline has passed
    await lapses.next('disconnect');
    const mark = keeps.log.mark;
    const session = await server.apiOk('POST', `/api/courses/${course}/sessions`,
      { token: teacher, body: { topic: 'Still here' } }, 201);
    assert.equal((await keeps.next('courseSessionStarted')).data.session_id, session.id);
    // A round trip on the same connection: anything sent to it before has arrived.
    const barrier = await keeps.roundTrip('checkActiveSessions', [{ course_id: course }], 'activeSessionsResponse');
    assert.equal(barrier.data.activeSessions.length, 1);
    assert.deepEqual(keeps.log.since('tokenExpired', mark), [], 'its deadline was moved');
    assert.equal(keeps.socket.connected, true);
    await server.apiOk('POST', `/api/sessions/${session.id}/end`, { token: teacher });
  });
});
