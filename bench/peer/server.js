'use strict';
// The benchmark peer: the stack of the system the seed came from (Node.js,
// socket.io 4, in-memory session state), implementing the same Socket.IO
// events, handshake and HTTP endpoints the benchmark scenarios use, with the
// same JSON shapes as attendance-live. Written the idiomatic way for that
// stack: plain `http`, `socket.io` with its default in-memory adapter,
// `jsonwebtoken` for HS256. Not a product: no persistence, one process.
//
//   ACCESS_TOKEN_SECRET=... node server.js --host 127.0.0.1 --port 4100

const http = require('http');
const crypto = require('crypto');
const jwt = require('jsonwebtoken');
const { Server } = require('socket.io');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const HOST = arg('--host', process.env.HOST || '127.0.0.1');
const PORT = Number(arg('--port', process.env.PORT || 4002));
const SECRET = process.env.ACCESS_TOKEN_SECRET;
if (!SECRET || SECRET.length < 32) {
  console.error('ACCESS_TOKEN_SECRET must be set to at least 32 characters');
  process.exit(2);
}
// A KeyObject made once: given a plain string, jsonwebtoken 9 first tries to
// parse it as a PEM public key on every verify (about 1.7 ms wasted per call).
const SECRET_KEY = crypto.createSecretKey(Buffer.from(SECRET, 'utf8'));
const MAX_MINUTES = Number(process.env.SESSION_MAX_MINUTES || 180);
const LATE_AFTER_DEFAULT = 15;

// ---------------------------------------------------------------- state
const users = new Map(); // id -> {id, name, email, role}
const courses = new Map(); // id -> {id, code, title, teacher_id, created_at}
const enrollments = new Map(); // course_id -> Map(user_id -> enrollment)
const sessions = new Map(); // id -> session
const activeByCourse = new Map(); // course_id -> Map(session_id -> session)
const socketsByUser = new Map(); // user_id -> Set(socket)

const now = () => new Date().toISOString();
const room = (courseId) => `course:${courseId}`;

function identity(claims) {
  const id = claims.sub != null ? String(claims.sub) : claims.uid != null ? String(claims.uid) : null;
  if (!id) return null;
  const role = ['student', 'teacher', 'admin'].includes(claims.role) ? claims.role : 'student';
  const user = { id, name: claims.name || id, email: claims.email || null, role };
  users.set(id, user); // refreshed from the claims on every authentication
  return user;
}

function verify(token) {
  // returns {user} or {error}
  try {
    const claims = jwt.verify(token, SECRET_KEY, { algorithms: ['HS256'] });
    if (claims.exp == null) return { error: 'Invalid token' };
    const user = identity(claims);
    return user ? { user } : { error: 'Invalid token' };
  } catch (err) {
    return { error: err.name === 'TokenExpiredError' ? 'Token expired' : 'Invalid token' };
  }
}

function relation(user, course) {
  // 'teacher' | 'admin' | 'student' (approved) | 'pending' | null
  if (!course) return null;
  if (user.role === 'admin') return 'admin';
  if (course.teacher_id === user.id) return 'teacher';
  const e = enrollments.get(course.id)?.get(user.id);
  if (!e) return null;
  return e.status === 'approved' ? 'student' : e.status === 'pending' ? 'pending' : null;
}
const manages = (rel) => rel === 'teacher' || rel === 'admin';
const member = (rel) => rel === 'teacher' || rel === 'admin' || rel === 'student';

function statistics(session) {
  let present = 0, late = 0, absent = 0, excused = 0;
  for (const r of session.records.values()) {
    if (r.status === 'present') present++;
    else if (r.status === 'late') { present++; late++; }
    else if (r.status === 'excused') excused++;
    else absent++;
  }
  const total = session.records.size;
  return { present, late, absent, excused, total, attendance_rate: total ? present / total : 0 };
}

function activeSessionsPayload(courseId) {
  const active = activeByCourse.get(courseId);
  const list = [];
  if (active) {
    for (const s of active.values()) {
      list.push({
        sessionId: s.id, teacherId: s.teacher_id, studentCount: s.studentCount,
        startedAt: s.started_at, topic: s.topic, totalStudents: s.records.size,
      });
    }
  }
  return { course_id: courseId, activeSessions: list };
}

function courseBody(course, rel) {
  const teacher = users.get(course.teacher_id);
  return {
    id: course.id, code: course.code, title: course.title, teacher_id: course.teacher_id,
    teacher_name: teacher ? teacher.name : course.teacher_id, created_at: course.created_at,
    my_role: rel === 'admin' ? 'admin' : rel === 'teacher' ? 'teacher' : 'student',
  };
}

function sessionBody(session, viewer) {
  const stats = statistics(session);
  let records = [...session.records.values()];
  if (viewer && !viewer.all) records = records.filter((r) => r.user_id === viewer.userId);
  return {
    id: session.id, course_id: session.course_id, teacher_id: session.teacher_id,
    teacher_name: session.teacher_name, topic: session.topic, status: session.status,
    started_at: session.started_at, started_by: session.started_by,
    ended_at: session.ended_at, ended_by: session.ended_by, statistics: stats,
    final_statistics: session.status === 'ended' ? session.final_statistics : null, records,
  };
}

// --------------------------------------------------------- domain changes
function startSession(course, actor, body) {
  const teacher = users.get(course.teacher_id);
  const startedAt = now();
  const session = {
    id: crypto.randomUUID(), course_id: course.id, teacher_id: course.teacher_id,
    teacher_name: teacher ? teacher.name : course.teacher_id, topic: body.topic ?? null,
    status: 'active', started_at: startedAt, started_by: actor.name, ended_at: null, ended_by: null,
    final_statistics: null, records: new Map(), studentCount: 0,
    late_after_minutes: body.late_after_minutes ?? LATE_AFTER_DEFAULT, startedMs: Date.now(),
  };
  const roster = enrollments.get(course.id);
  if (roster) {
    for (const e of roster.values()) {
      if (e.status === 'approved') {
        session.records.set(e.user_id, {
          user_id: e.user_id, name: e.name, status: 'absent', marked_at: null, marked_by: null, remarks: null,
        });
      }
    }
  }
  sessions.set(session.id, session);
  if (!activeByCourse.has(course.id)) activeByCourse.set(course.id, new Map());
  activeByCourse.get(course.id).set(session.id, session);
  const minutes = body.max_duration_minutes ?? MAX_MINUTES;
  session.timer = setTimeout(() => endSession(session, { name: 'system' }), minutes * 60000);
  session.timer.unref();
  io.to(room(course.id)).emit('courseSessionStarted', {
    course_id: course.id, session_id: session.id, teacher_id: session.teacher_id,
    teacher_name: session.teacher_name, started_by: session.started_by, started_at: startedAt,
    topic: session.topic,
  });
  io.to(room(course.id)).emit('activeSessionsData', activeSessionsPayload(course.id));
  return session;
}

function endSession(session, actor) {
  if (session.status !== 'active') return false;
  clearTimeout(session.timer);
  session.status = 'ended';
  session.ended_at = now();
  session.ended_by = actor.name;
  session.final_statistics = statistics(session);
  activeByCourse.get(session.course_id)?.delete(session.id);
  io.to(room(session.course_id)).emit('courseSessionEnded', {
    course_id: session.course_id, session_id: session.id, teacher_id: session.teacher_id,
    teacher_name: session.teacher_name, final_statistics: session.final_statistics,
    ended_by: session.ended_by, ended_at: session.ended_at,
  });
  io.to(room(session.course_id)).emit('activeSessionsData', activeSessionsPayload(session.course_id));
  return true;
}

function checkIn(session, user, enrollment) {
  let record = session.records.get(user.id);
  if (!record) {
    record = { user_id: user.id, name: enrollment.name, status: 'absent', marked_at: null, marked_by: null, remarks: null };
    session.records.set(user.id, record);
  }
  if (record.status !== 'absent' || record.marked_by) return record; // repeat or marked by the teacher
  const late = Date.now() - session.startedMs > session.late_after_minutes * 60000;
  record.status = late ? 'late' : 'present';
  record.marked_at = now();
  record.marked_by = user.name;
  session.studentCount++;
  io.to(room(session.course_id)).emit('activeSessionsData', activeSessionsPayload(session.course_id));
  return record;
}

// ------------------------------------------------------------------ HTTP
function send(res, status, body, headers) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers });
  res.end(data);
}
const fail = (res, status, detail) =>
  send(res, status, { detail }, status === 401 ? { 'WWW-Authenticate': 'Bearer' } : undefined);

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (!chunks.length) return resolve({});
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch { resolve(undefined); }
    });
  });
}

const routes = [
  ['POST', /^\/api\/courses$/, createCourse],
  ['GET', /^\/api\/courses\/([^/]+)$/, getCourse],
  ['PUT', /^\/api\/courses\/([^/]+)\/enrollments\/([^/]+)$/, putEnrollment],
  ['POST', /^\/api\/courses\/([^/]+)\/sessions$/, postSession],
  ['GET', /^\/api\/courses\/([^/]+)\/active-sessions$/, getActive],
  ['GET', /^\/api\/sessions\/([^/]+)$/, getSession],
  ['POST', /^\/api\/sessions\/([^/]+)\/check-in$/, postCheckIn],
  ['POST', /^\/api\/sessions\/([^/]+)\/end$/, postEnd],
];

function createCourse(req, res, user, body) {
  if (user.role !== 'teacher' && user.role !== 'admin') return fail(res, 403, 'Only teachers and admins may create courses');
  if (typeof body.code !== 'string' || typeof body.title !== 'string') return fail(res, 422, 'code and title are required strings');
  const id = typeof body.id === 'string' && body.id ? body.id : crypto.randomUUID();
  if (courses.has(id)) return fail(res, 409, `Course ${id} already exists`);
  const course = { id, code: body.code, title: body.title, teacher_id: user.id, created_at: now() };
  courses.set(id, course);
  send(res, 201, courseBody(course, user.role === 'admin' ? 'admin' : 'teacher'));
}

function getCourse(req, res, user, body, [courseId]) {
  const course = courses.get(courseId);
  const rel = relation(user, course);
  if (!rel) return fail(res, 404, `Course ${courseId} not found`);
  if (!member(rel)) return fail(res, 403, 'Your enrollment is not approved');
  send(res, 200, courseBody(course, rel));
}

function putEnrollment(req, res, user, body, [courseId, userId]) {
  const course = courses.get(courseId);
  const rel = relation(user, course);
  if (!rel) return fail(res, 404, `Course ${courseId} not found`);
  if (!manages(rel)) return fail(res, 403, 'Only the course teacher or an admin may change enrollments');
  if (!['pending', 'approved', 'rejected'].includes(body.status)) return fail(res, 422, 'status must be pending, approved or rejected');
  if (!enrollments.has(courseId)) enrollments.set(courseId, new Map());
  const known = users.get(userId);
  const e = {
    course_id: courseId, user_id: userId, name: body.name ?? known?.name ?? userId,
    email: body.email ?? known?.email ?? null, status: body.status, updated_at: now(),
  };
  const created = !enrollments.get(courseId).has(userId);
  enrollments.get(courseId).set(userId, e);
  if (e.status !== 'approved') {
    for (const s of socketsByUser.get(userId) || []) s.leave(room(courseId));
  }
  send(res, created ? 201 : 200, e);
}

function postSession(req, res, user, body, [courseId]) {
  const course = courses.get(courseId);
  const rel = relation(user, course);
  if (!rel) return fail(res, 404, `Course ${courseId} not found`);
  if (!manages(rel)) return fail(res, 403, 'Only the course teacher or an admin may start a session');
  send(res, 201, sessionBody(startSession(course, user, body), { all: true }));
}

function getActive(req, res, user, body, [courseId]) {
  const rel = relation(user, courses.get(courseId));
  if (!rel) return fail(res, 404, `Course ${courseId} not found`);
  if (!member(rel)) return fail(res, 403, 'Your enrollment is not approved');
  send(res, 200, activeSessionsPayload(courseId));
}

function sessionAccess(res, user, sessionId) {
  const session = sessions.get(sessionId);
  const rel = session ? relation(user, courses.get(session.course_id)) : null;
  if (!rel) { fail(res, 404, `Session ${sessionId} not found`); return null; }
  if (!member(rel)) { fail(res, 403, 'Your enrollment is not approved'); return null; }
  return { session, rel };
}

function getSession(req, res, user, body, [sessionId]) {
  const a = sessionAccess(res, user, sessionId);
  if (a) send(res, 200, sessionBody(a.session, { all: manages(a.rel), userId: user.id }));
}

function postCheckIn(req, res, user, body, [sessionId]) {
  const a = sessionAccess(res, user, sessionId);
  if (!a) return;
  if (a.rel !== 'student') return fail(res, 403, 'Only approved students check in');
  if (a.session.status !== 'active') return fail(res, 409, 'The session has ended');
  const enrollment = enrollments.get(a.session.course_id).get(user.id);
  send(res, 200, checkIn(a.session, user, enrollment));
}

function postEnd(req, res, user, body, [sessionId]) {
  const a = sessionAccess(res, user, sessionId);
  if (!a) return;
  if (!manages(a.rel)) return fail(res, 403, 'Only the course teacher or an admin may end a session');
  if (!endSession(a.session, user)) return fail(res, 409, 'The session has already ended');
  send(res, 200, sessionBody(a.session, { all: true }));
}

const httpServer = http.createServer(async (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/healthz' || path === '/readyz') return send(res, 200, { status: 'ok' });
  for (const [method, pattern, handler] of routes) {
    const m = req.method === method && pattern.exec(path);
    if (!m) continue;
    const auth = req.headers.authorization || '';
    if (!auth.startsWith('Bearer ')) return fail(res, 401, 'Authentication required');
    const v = verify(auth.slice(7));
    if (v.error) return fail(res, 401, v.error);
    const body = await readJson(req);
    if (body === undefined || typeof body !== 'object' || body === null) return fail(res, 422, 'Body must be a JSON object');
    return handler(req, res, v.user, body, m.slice(1).map(decodeURIComponent));
  }
  fail(res, 404, 'Not Found');
});

// ------------------------------------------------------------- Socket.IO
const io = new Server(httpServer, { cors: { origin: '*' }, maxHttpBufferSize: 64 * 1024 });

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (!token) return next(new Error('Authentication required'));
  const v = verify(token);
  if (v.error) return next(new Error(v.error));
  socket.data.user = v.user;
  next();
});

function courseRequest(socket, event, payload, ack) {
  // validates and authorizes; returns the course id or null after answering
  const reply = (error) => {
    const body = { message: error[1], code: error[0], event };
    if (payload && typeof payload.course_id === 'string') body.course_id = payload.course_id;
    socket.emit('activeSessionsError', body);
    if (typeof ack === 'function') ack(body);
    return null;
  };
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return reply(['invalid_payload', 'payload must be an object with course_id']);
  const id = payload.course_id;
  if (typeof id !== 'string' || !id || id.length > 128) return reply(['invalid_payload', 'course_id must be a non-empty string of at most 128 characters']);
  if (event === 'unsubscribeFromCourse') return id;
  if (!member(relation(socket.data.user, courses.get(id)))) return reply(['forbidden', `Course ${id} not found or not accessible`]);
  return id;
}

io.on('connection', (socket) => {
  const user = socket.data.user;
  if (!socketsByUser.has(user.id)) socketsByUser.set(user.id, new Set());
  socketsByUser.get(user.id).add(socket);
  socket.on('disconnect', () => {
    const set = socketsByUser.get(user.id);
    set.delete(socket);
    if (!set.size) socketsByUser.delete(user.id);
  });

  socket.on('subscribeToCourse', (payload, ack) => {
    const id = courseRequest(socket, 'subscribeToCourse', payload, ack);
    if (id === null) return;
    socket.join(room(id));
    const data = activeSessionsPayload(id);
    socket.emit('activeSessionsData', data);
    if (typeof ack === 'function') ack(data);
  });
  socket.on('unsubscribeFromCourse', (payload, ack) => {
    const id = courseRequest(socket, 'unsubscribeFromCourse', payload, ack);
    if (id === null) return;
    socket.leave(room(id));
    if (typeof ack === 'function') ack({ course_id: id });
  });
  socket.on('checkActiveSessions', (payload, ack) => {
    const id = courseRequest(socket, 'checkActiveSessions', payload, ack);
    if (id === null) return;
    const data = activeSessionsPayload(id);
    socket.emit('activeSessionsResponse', data);
    if (typeof ack === 'function') ack(data);
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`peer listening on http://${HOST}:${PORT}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
