// The seed hook's flow without React, plus a recorder that tests can await.
//
// trackCourse() does exactly what the effect in the seed's useCourseSessionTracking does:
// io(url, {auth: {token}}), on 'connect' emit subscribeToCourse {course_id}, listen for the five
// server events, keep activeSessions from activeSessionsData of this course, and on cleanup emit
// unsubscribeFromCourse and disconnect. Every event the socket receives is recorded in order, so a
// test can `await tracker.next('courseSessionStarted')` instead of sleeping.

import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

export const DEFAULT_WAIT_MS = 5_000;

const SERVER_EVENTS = [
  'courseSessionStarted',
  'courseSessionEnded',
  'activeSessionsData',
  'activeSessionsResponse',
  'activeSessionsError',
];

const short = (value) => {
  let text;
  try { text = JSON.stringify(value); } catch { text = String(value); }
  if (text === undefined) text = 'undefined';
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
};

/**
 * An ordered log of received events. Each event name has its own read cursor: next(name) returns
 * the first event of that name not yet returned, waiting for it if needed. `seq` is the position in
 * the whole log, so tests can assert order across names (a.seq < b.seq).
 */
export class EventLog {
  constructor(label) {
    this.label = label;
    this.events = [];
    this.cursors = new Map();
    this.waiters = new Set();
  }

  push(name, args) {
    const event = { seq: this.events.length, name, data: args[0], args, at: Date.now() };
    this.events.push(event);
    for (const waiter of [...this.waiters]) waiter();
    return event;
  }

  /** Seq the next pushed event will get. */
  get mark() {
    return this.events.length;
  }

  #find(names, where) {
    for (const name of names) {
      const from = this.cursors.get(name) ?? 0;
      for (let i = from; i < this.events.length; i += 1) {
        const event = this.events[i];
        if (event.name === name && where(event.data, event)) return event;
      }
    }
    return null;
  }

  /**
   * The next unread event named `name` (or any of the names in an array; the earliest wins).
   * `where` filters (non-matching events of that name are skipped and count as read).
   */
  next(names, { where = () => true, timeout = DEFAULT_WAIT_MS, what = '' } = {}) {
    const list = Array.isArray(names) ? names : [names];
    const take = () => {
      const candidates = list
        .map((name) => this.#find([name], where))
        .filter(Boolean)
        .sort((a, b) => a.seq - b.seq);
      const event = candidates[0];
      if (!event) return null;
      this.cursors.set(event.name, event.seq + 1);
      return event;
    };
    const ready = take();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolveEvent, reject) => {
      const waiter = () => {
        const event = take();
        if (event) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolveEvent(event);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(
          `[${this.label}] no ${list.map((n) => `"${n}"`).join(' or ')} event within ${timeout} ms` +
          `${what ? ` (${what})` : ''}. Events received so far:\n${this.describe()}`));
      }, timeout);
      this.waiters.add(waiter);
    });
  }

  /** Events named `name` received at or after seq `since`. */
  since(name, since = 0) {
    return this.events.filter((event) => event.name === name && event.seq >= since);
  }

  /** Mark every event received so far as read, for all names. */
  skipAll() {
    for (const event of this.events) this.cursors.set(event.name, event.seq + 1);
  }

  describe(last = 15) {
    if (this.events.length === 0) return '  (none)';
    return this.events.slice(-last)
      .map((event) => `  #${event.seq} ${event.name} ${event.args.length ? short(event.data) : ''}`)
      .join('\n');
  }
}

/**
 * The seed hook's effect for (courseId, authToken) against `url`.
 * `ioOptions` are merged after the seed's own `{auth: {token}}` (for transports in the transport
 * test; forceNew so sockets of one test file never share a connection unless a test wants it).
 * `subscribe: false` makes a bystander: connected, same course id for round trips, never subscribed.
 */
export function trackCourse(url, courseId, authToken, { label = 'client', ioOptions = {}, subscribe = true } = {}) {
  const log = new EventLog(label);
  const state = { activeSessions: [], isConnected: false, errors: [] };

  // ---- the seed's effect, line for line ----
  const newSocket = io(url, {
    auth: {
      token: authToken,
    },
    forceNew: true,
    ...ioOptions,
  });

  newSocket.on('connect', () => {
    state.isConnected = true;
    log.push('connect', []);
    if (!subscribe) return; // only for bystanders that must stay out of the room
    newSocket.emit('subscribeToCourse', {
      course_id: courseId,
    });
  });

  newSocket.on('disconnect', (reason) => {
    state.isConnected = false;
    log.push('disconnect', [reason]);
  });

  newSocket.on('courseSessionStarted', () => {});
  newSocket.on('courseSessionEnded', () => {});
  newSocket.on('activeSessionsData', (data) => {
    if (data && data.course_id === courseId) {
      state.activeSessions = data.activeSessions;
    }
  });
  newSocket.on('activeSessionsError', (error) => {
    state.errors.push(error);
  });
  // ---- end of the seed's effect ----

  // Recording: every event from the server, in order, including ones the seed does not listen to.
  newSocket.onAny((name, ...args) => log.push(name, args));
  newSocket.on('connect_error', (error) => log.push('connect_error', [error]));
  newSocket.io.on('reconnect_attempt', (attempt) => log.push('reconnect_attempt', [attempt]));

  const tracker = {
    socket: newSocket,
    log,
    state,
    courseId,
    get hasActiveSessions() { return state.activeSessions.length > 0; },
    next: (name, options) => log.next(name, options),
    /** The seed's cleanup: unsubscribe, then disconnect. */
    cleanup() {
      if (newSocket.connected) newSocket.emit('unsubscribeFromCourse', { course_id: courseId });
      newSocket.disconnect();
    },
    /** Emit and await the next of `replies` (an event name or array), returning it. */
    async roundTrip(event, payload, replies, options = {}) {
      newSocket.emit(event, payload);
      return log.next(replies, { what: `reply to ${event} ${short(payload)}`, ...options });
    },
  };
  return tracker;
}

/** A bare socket (no auto-subscribe), recorded the same way. For refusals and bad input. */
export function rawSocket(url, { label = 'raw', ...ioOptions } = {}) {
  const log = new EventLog(label);
  const socket = io(url, { forceNew: true, ...ioOptions });
  socket.on('connect', () => log.push('connect', []));
  socket.on('disconnect', (reason) => log.push('disconnect', [reason]));
  socket.on('connect_error', (error) => log.push('connect_error', [error]));
  socket.onAny((name, ...args) => log.push(name, args));
  return {
    socket,
    log,
    next: (name, options) => log.next(name, options),
    async roundTrip(event, args, replies, options = {}) {
      socket.emit(event, ...args);
      return log.next(replies, { what: `reply to ${event} ${short(args)}`, ...options });
    },
    close() { socket.disconnect(); },
  };
}

/**
 * Prove `tracker` did NOT receive `name` since seq `since`: do a round trip on that socket first,
 * so anything the server sent it earlier has arrived (one connection delivers in order).
 * The round trip is checkActiveSessions, answered by activeSessionsResponse or activeSessionsError;
 * pass `via: 'subscribe'` when the event under test is activeSessionsResponse itself.
 */
export async function assertNotReceived(tracker, name, since, { via = 'check', why = '' } = {}) {
  if (via === 'subscribe') {
    await tracker.roundTrip('subscribeToCourse', { course_id: tracker.courseId },
      ['activeSessionsData', 'activeSessionsError'], { what: 'barrier' });
  } else {
    await tracker.roundTrip('checkActiveSessions', { course_id: tracker.courseId },
      ['activeSessionsResponse', 'activeSessionsError'], { what: 'barrier' });
  }
  const got = tracker.log.since(name, since);
  assert.equal(got.length, 0,
    `[${tracker.log.label}] must not receive "${name}"${why ? ` (${why})` : ''}, but got: ${short(got.map((e) => e.data))}`);
}

/** Wait until the socket is connected (the 'connect' event), or fail with what happened instead. */
export async function connected(tracker, timeout = DEFAULT_WAIT_MS) {
  if (tracker.socket.connected) return;
  await tracker.log.next(['connect', 'connect_error'], { timeout, what: 'connecting' }).then((event) => {
    if (event.name === 'connect_error') {
      throw new Error(`[${tracker.log.label}] connect_error: ${event.data?.message}`);
    }
  });
}

export { SERVER_EVENTS, short };
