// Starts the real attendance-live server for a test file and tears it down.
//
//   const server = await startServer();   // temp dir, `demo --json`, `serve`, wait for /healthz
//   server.url, server.demo (the JSON printed by `demo --json`), server.api(...), server.mintToken(...)
//   await server.restart();               // SIGTERM, then serve again on the same port and database
//   await server.close();                 // stop (SIGTERM, SIGKILL if it hangs) and remove the temp dir
//
// The executable is $ATTENDANCE_LIVE_BIN, by default <repo>/.venv/bin/attendance-live.
// Set ATTENDANCE_LIVE_KEEP_TMP=1 to keep the temp dir (database and server.log) for a post-mortem.

import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '..', '..', '..');
export const ATTENDANCE_LIVE_BIN =
  process.env.ATTENDANCE_LIVE_BIN || join(REPO_ROOT, '.venv', 'bin', 'attendance-live');

const HEALTH_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

// Every child we spawn, so that nothing outlives this process whatever happens.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

function runCli(args, env) {
  return new Promise((resolveRun, reject) => {
    execFile(ATTENDANCE_LIVE_BIN, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(
            `\`attendance-live ${args.join(' ')}\` failed (${error.code ?? error.signal}): ${error.message}\n` +
            `stdout:\n${stdout}\nstderr:\n${stderr}` +
            (error.code === 'ENOENT'
              ? `\n${ATTENDANCE_LIVE_BIN} does not exist: install the server ` +
                `(python3 -m venv .venv && .venv/bin/pip install -e '.[test]') or set ATTENDANCE_LIVE_BIN.`
              : '')));
        } else {
          resolveRun({ stdout, stderr });
        }
      });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Server {
  constructor({ dir, env, port }) {
    this.dir = dir;
    this.env = env;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.logPath = join(dir, 'server.log');
    this.demo = null;
    this.generation = 0;
  }

  async seedDemo() {
    const { stdout } = await runCli(['demo', '--json'], this.env);
    try {
      this.demo = JSON.parse(stdout);
    } catch (error) {
      throw new Error(`\`attendance-live demo --json\` did not print JSON (${error.message}):\n${stdout}`);
    }
    return this.demo;
  }

  async start() {
    if (this.child) throw new Error('server already running');
    this.generation += 1;
    const log = createWriteStream(this.logPath, { flags: 'a' });
    log.write(`\n===== start #${this.generation} on port ${this.port} =====\n`);
    const child = spawn(ATTENDANCE_LIVE_BIN, ['serve', '--host', '127.0.0.1', '--port', String(this.port)], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    this.child = child;
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolveExit({ code, signal });
      });
      child.once('error', (error) => {
        children.delete(child);
        resolveExit({ code: null, signal: null, error });
      });
    });
    child.exited.then(() => log.end());

    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    let lastProblem = 'no answer yet';
    let exitInfo = null;
    child.exited.then((info) => { exitInfo = info; });
    while (Date.now() < deadline) {
      if (exitInfo) {
        this.child = null;
        throw new Error(
          `attendance-live serve exited before it was healthy (${JSON.stringify(exitInfo.error?.message ?? exitInfo)}).\n` +
          `Server log:\n${await this.logTail()}`);
      }
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return;
        lastProblem = `GET /healthz answered ${res.status}`;
      } catch (error) {
        lastProblem = error.cause?.code ?? error.message;
      }
      await sleep(100);
    }
    await this.stop();
    throw new Error(`attendance-live serve was not healthy after ${HEALTH_TIMEOUT_MS} ms (${lastProblem}).\n` +
      `Server log:\n${await this.logTail()}`);
  }

  /** SIGTERM, wait up to STOP_GRACE_MS, then SIGKILL. Returns how it went. */
  async stop() {
    const child = this.child;
    if (!child) return null;
    this.child = null;
    const began = Date.now();
    child.kill('SIGTERM');
    let timer;
    const grace = new Promise((r) => { timer = setTimeout(() => r('timeout'), STOP_GRACE_MS); });
    const outcome = await Promise.race([child.exited, grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      child.kill('SIGKILL');
      const info = await child.exited;
      return { ...info, killed: true, ms: Date.now() - began };
    }
    return { ...outcome, killed: false, ms: Date.now() - began };
  }

  /** Stop with SIGTERM and start again on the same port and database file. */
  async restart() {
    const stopped = await this.stop();
    await this.start();
    return stopped;
  }

  async close() {
    const stopped = await this.stop();
    if (stopped?.killed) {
      process.stderr.write(`# attendance-live serve ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed ` +
        `(port ${this.port}); server log tail:\n${await this.logTail(20)}\n`);
    }
    if (process.env.ATTENDANCE_LIVE_KEEP_TMP) {
      process.stderr.write(`# attendance-live test files kept in ${this.dir}\n`);
    } else {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  async logTail(lines = 60) {
    try {
      const text = await readFile(this.logPath, 'utf8');
      return text.split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  }

  /** `attendance-live token USER_ID --name N --role R --ttl S` with this server's secret. */
  async mintToken(userId, { name = userId, role = 'student', ttl = 3600 } = {}) {
    const { stdout } = await runCli(
      ['token', userId, '--name', name, '--role', role, '--ttl', String(ttl)], this.env);
    const token = stdout.trim().split('\n').pop().trim();
    if (token.split('.').length !== 3) {
      throw new Error(`\`attendance-live token\` did not print a JWT: ${JSON.stringify(stdout)}`);
    }
    return token;
  }

  /** Sign a token ourselves (HS256 with the server's secret), for claims the CLI cannot make. */
  signToken(claims, { secret = this.env.ACCESS_TOKEN_SECRET, alg = 'HS256' } = {}) {
    return signJwt(claims, secret, alg);
  }

  /** JSON HTTP call; returns {status, headers, body} and never throws on HTTP errors. */
  async api(method, path, { token, body } = {}) {
    const headers = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const init = { method, headers, signal: AbortSignal.timeout(10_000) };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(`${this.url}${path}`, init);
    const text = await res.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* keep the text */ }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /** Like api(), but fails with the response in the message unless the status is `expected`. */
  async apiOk(method, path, options = {}, expected = 200) {
    const res = await this.api(method, path, options);
    if (res.status !== expected) {
      throw new Error(`${method} ${path} answered ${res.status}, expected ${expected}: ${JSON.stringify(res.body)}`);
    }
    return res.body;
  }
}

/**
 * A fresh server: temp dir, `attendance-live demo --json` on its database, then `serve`.
 * Registers nothing global: call `close()` in an `after` hook (it is safe to call twice).
 */
export async function startServer({ extraEnv = {} } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'attendance-live-js-'));
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite+aiosqlite:///${join(dir, 't.db')}`,
    ACCESS_TOKEN_SECRET: randomBytes(36).toString('base64url'), // 48 characters
    LOG_LEVEL: process.env.LOG_LEVEL || 'info',
    ...extraEnv,
  };
  delete env.REDIS_URL;
  const server = new Server({ dir, env, port: await freePort() });
  try {
    await server.seedDemo();
    await server.start();
  } catch (error) {
    await server.close();
    throw error;
  }
  return server;
}

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

export function signJwt(claims, secret, alg = 'HS256') {
  const head = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}`;
  if (alg === 'none') return `${head}.`;
  if (alg !== 'HS256') throw new Error(`signJwt only does HS256 and none, not ${alg}`);
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** UTC ISO 8601 with milliseconds and Z, as CONTRACT.md requires. */
export const ISO_MS_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
