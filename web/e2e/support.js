// Helpers for the browser tests: find Chromium, start the real server on a free
// loopback port with a fresh database, and always stop it again.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const screenshotDir = path.join(here, 'screenshots');
export const outputDir = path.join(here, 'output');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium; a missing browser fails the run with the fix, never a skip. */
export function chromiumPath() {
  const executable = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(executable)) {
    throw new Error(
      `Chromium was not found at ${executable}. The browser tests need Debian's chromium: ` +
        'run `apt-get update && apt-get install -y chromium` (or set CHROMIUM_PATH to a Chromium binary).',
    );
  }
  return executable;
}

export function serverBinary() {
  const binary = process.env.ATTENDANCE_LIVE_BIN || path.join(repoRoot, '.venv', 'bin', 'attendance-live');
  if (!existsSync(binary)) {
    throw new Error(
      `The server was not found at ${binary}. Install it with ` +
        "`python3 -m venv .venv && .venv/bin/pip install -e '.[test]'` from the repository root, " +
        'or set ATTENDANCE_LIVE_BIN.',
    );
  }
  return binary;
}

export function distIsBuilt() {
  const index = path.join(repoRoot, 'src', 'attendance_live', 'web', 'dist', 'index.html');
  if (!existsSync(index)) {
    throw new Error(`The dashboard is not built (${index} is missing): run \`npm --prefix web run build\`.`);
  }
}

/** Start each run's server log afresh. */
export function resetServerLog() {
  rmSync(path.join(outputDir, 'server.log'), { force: true });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Start `attendance-live serve --demo` on a free port with its own SQLite file
 * and secret; resolve once /healthz answers 200. Passing a previous run's
 * `{dir, port, secret}` restarts the same server (same database, same tokens).
 * `demo: false` leaves out --demo; `env` adds settings (e.g. OIDC_ISSUER).
 */
export async function startServer({
  timeoutMs = 60_000,
  dir: reuseDir,
  port: reusePort,
  secret: reuseSecret,
  demo = true,
  env: extraEnv = {},
} = {}) {
  const binary = serverBinary();
  const dir = reuseDir ?? mkdtempSync(path.join(os.tmpdir(), 'attendance-live-e2e-'));
  const port = reusePort ?? (await freePort());
  const secret = reuseSecret ?? randomBytes(36).toString('base64url'); // 48 characters
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite+aiosqlite:///${path.join(dir, 't.db')}`,
    ACCESS_TOKEN_SECRET: secret,
    LOG_LEVEL: process.env.LOG_LEVEL || 'INFO',
    ...extraEnv,
  };
  delete env.REDIS_URL;
  const args = ['serve', '--host', '127.0.0.1', '--port', String(port), ...(demo ? ['--demo'] : [])];
  const child = spawn(binary, args, {
    cwd: dir,
    env,
    detached: true, // its own process group, so that stop() ends all of it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk) => {
    log += chunk.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });

  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  // Whatever happens to this test process, the server does not outlive it.
  const onExit = () => killGroup('SIGKILL');
  process.on('exit', onExit);

  const stop = async ({ keepDir = false } = {}) => {
    process.off('exit', onExit);
    if (exited === null) {
      killGroup('SIGTERM');
      for (let i = 0; i < 50 && exited === null; i += 1) await sleep(100);
      if (exited === null) killGroup('SIGKILL');
      for (let i = 0; i < 20 && exited === null; i += 1) await sleep(100);
    }
    try {
      mkdirSync(outputDir, { recursive: true });
      appendFileSync(path.join(outputDir, 'server.log'), log);
    } catch {
      // The log is a convenience.
    }
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== null) {
      await stop();
      throw new Error(`The server exited during start-up (${JSON.stringify(exited)}). Its output:\n${log}`);
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`The server did not answer ${baseUrl}/healthz within ${timeoutMs} ms. Its output:\n${log}`);
    }
    await sleep(150);
  }
  return { baseUrl, dir, port, secret, stop, log: () => log };
}
