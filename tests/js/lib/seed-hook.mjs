// Runs the seed's React hook, its text unchanged (seed/useCourseSessionTracking.js), in Node.
//
// React itself is not needed to exercise the hook's socket logic: a ~40-line stand-in provides
// useState (state slots, batched re-render on set) and useEffect (runs after render when its deps
// change; the previous cleanup runs first; unmount runs the last cleanup). Only two edits are made
// to the text before it runs, both checked: the two `import` lines and the `export default` are
// dropped (their names are passed in instead), and 'http://localhost:4002' becomes the test
// server's URL. The hook's console.log/console.error calls are captured, not printed.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
export const SEED_HOOK_PATH = join(here, '..', 'seed', 'useCourseSessionTracking.js');

function replaceOnce(text, pattern, replacement, what) {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`)) ?? [];
  if (matches.length !== 1) {
    throw new Error(`seed hook text: expected exactly one ${what}, found ${matches.length}`);
  }
  return text.replace(pattern, replacement);
}

/** The seed hook function, bound to a React stand-in, `io`, and a captured console. */
export function loadSeedHook(serverUrl, react, consoleStandIn) {
  let text = readFileSync(SEED_HOOK_PATH, 'utf8');
  text = replaceOnce(text, /^import \{ useEffect, useState \} from 'react';$/m, '', "react import");
  text = replaceOnce(text, /^import \{ io \} from 'socket.io-client';$/m, '', 'socket.io-client import');
  text = replaceOnce(text, /^export default useCourseSessionTracking;$/m, '', 'export default');
  text = replaceOnce(text, /'http:\/\/localhost:4002'/, JSON.stringify(serverUrl), 'server URL');
  // eslint-disable-next-line no-new-func
  const factory = new Function('useEffect', 'useState', 'io', 'console',
    `"use strict";\n${text}\nreturn useCourseSessionTracking;`);
  return factory(react.useEffect, react.useState, io, consoleStandIn);
}

/**
 * renderHook(hook, ...args) -> {result, renders, waitFor(predicate), unmount()}
 * Each render's return value is appended to `renders`; waitFor resolves on the first render
 * (past or future, from the given index) whose value satisfies the predicate.
 */
export function createRenderer() {
  const slots = [];
  const effects = [];
  let cursor = 0;
  let effectCursor = 0;
  let scheduled = false;
  let mounted = true;
  let renderFn = null;
  const renders = [];
  const waiters = new Set();

  const schedule = () => {
    if (scheduled || !mounted) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (mounted) render();
    });
  };

  const react = {
    useState(initial) {
      const i = cursor++;
      if (!(i in slots)) slots[i] = typeof initial === 'function' ? initial() : initial;
      const set = (value) => {
        const next = typeof value === 'function' ? value(slots[i]) : value;
        if (Object.is(next, slots[i])) return;
        slots[i] = next;
        schedule();
      };
      return [slots[i], set];
    },
    useEffect(effect, deps) {
      const i = effectCursor++;
      const previous = effects[i];
      const changed = !previous || !deps || deps.length !== previous.deps.length ||
        deps.some((d, k) => !Object.is(d, previous.deps[k]));
      if (changed) effects[i] = { ...(previous ?? {}), effect, deps: deps ?? [], pending: true };
    },
  };

  function render() {
    cursor = 0;
    effectCursor = 0;
    const value = renderFn();
    renders.push(value);
    for (const slot of effects) {
      if (!slot?.pending) continue;
      slot.pending = false;
      if (typeof slot.cleanup === 'function') slot.cleanup();
      slot.cleanup = slot.effect();
    }
    for (const waiter of [...waiters]) waiter();
  }

  return {
    react,
    renders,
    mount(fn) {
      renderFn = fn;
      render();
    },
    get result() { return renders.at(-1); },
    waitFor(predicate, { timeout = 5000, what = 'a render', from = 0 } = {}) {
      const found = () => renders.slice(from).find(predicate);
      const ready = found();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolveRender, reject) => {
        const waiter = () => {
          const value = found();
          if (value) {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolveRender(value);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const last = renders.at(-1);
          reject(new Error(`seed hook: no render with ${what} within ${timeout} ms; last render: ` +
            JSON.stringify({ isConnected: last?.isConnected, activeSessions: last?.activeSessions })));
        }, timeout);
        waiters.add(waiter);
      });
    },
    unmount() {
      mounted = false;
      for (const slot of effects) {
        if (typeof slot?.cleanup === 'function') slot.cleanup();
      }
    },
  };
}

/** Mount the verbatim seed hook for (courseId, authToken) against serverUrl. */
export function mountSeedHook(serverUrl, courseId, authToken) {
  const renderer = createRenderer();
  const logs = [];
  const consoleStandIn = {
    log: (...args) => logs.push({ level: 'log', args }),
    error: (...args) => logs.push({ level: 'error', args }),
    warn: (...args) => logs.push({ level: 'warn', args }),
  };
  const useCourseSessionTracking = loadSeedHook(serverUrl, renderer.react, consoleStandIn);
  renderer.mount(() => useCourseSessionTracking(courseId, authToken));
  return { ...renderer, logs, get result() { return renderer.result; } };
}
