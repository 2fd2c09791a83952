// `fetch` replaced in every test of a file, and JSON answers for it.
import { cleanup } from '@testing-library/react';
import { afterEach, beforeEach, vi } from 'vitest';

export function json(body, status = 200, headers = {}) {
  return Promise.resolve(
    new Response(typeof body === 'string' ? body : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': 'application/json', ...headers },
    }),
  );
}

/** Call at the top of a test file: `http.mock` is that test's `fetch` (a vi.fn). */
export function useFakeFetch() {
  const http = { mock: null };
  beforeEach(() => {
    http.mock = vi.fn();
    vi.stubGlobal('fetch', http.mock);
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });
  return http;
}
