// A stand-in for socket.io-client's Socket: records what the client emits and
// lets a test play the server (`serverEmit`) and the network (`simulateConnect`,
// `simulateDisconnect`).

export class FakeSocket {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.connected = false;
    this.disconnectCalls = 0;
    /** @type {Array<[string, unknown]>} */
    this.sent = [];
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    /** Emits that wait for the server's ack: answer them with `ackNext`. */
    this.acks = [];
    this.nextTimeout = null;
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return this;
  }

  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
    return this;
  }

  emit(event, payload, ack) {
    this.sent.push([event, payload]);
    if (typeof ack === 'function') this.acks.push({ event, payload, ack, timeoutMs: this.nextTimeout });
    this.nextTimeout = null;
    return this;
  }

  /** socket.io-client's `socket.timeout(ms).emit(event, payload, (err, answer) => …)`. */
  timeout(ms) {
    this.nextTimeout = ms;
    return this;
  }

  disconnect() {
    this.disconnectCalls += 1;
    const wasConnected = this.connected;
    this.connected = false;
    if (wasConnected) this.fire('disconnect', 'io client disconnect');
    return this;
  }

  // --- test controls ---

  fire(event, ...args) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(...args);
  }

  serverEmit(event, payload) {
    this.fire(event, payload);
  }

  /** Answer the oldest emit still waiting for its ack: `ackNext(null, answer)`, or an error (a timeout). */
  ackNext(error, answer) {
    const waiting = this.acks.shift();
    if (!waiting) throw new Error('no emit is waiting for an ack');
    waiting.ack(error, answer);
    return waiting;
  }

  simulateConnect() {
    this.connected = true;
    this.fire('connect');
  }

  simulateDisconnect(reason = 'transport close') {
    this.connected = false;
    this.fire('disconnect', reason);
  }

  listenerCount() {
    let count = 0;
    for (const set of this.handlers.values()) count += set.size;
    return count;
  }

  sentEvents(name) {
    return this.sent.filter(([event]) => event === name).map(([, payload]) => payload);
  }
}

/** An `io` replacement that remembers every socket it made. */
export function fakeIo() {
  const sockets = [];
  const factory = (url, options) => {
    const socket = new FakeSocket(url, options);
    sockets.push(socket);
    return socket;
  };
  factory.sockets = sockets;
  return factory;
}
