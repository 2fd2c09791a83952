import { afterEach, describe, expect, it, vi } from 'vitest';

// A fresh module per test: the launch token is module state.
async function freshAuth() {
  vi.resetModules();
  return import('../src/auth.js');
}

afterEach(() => {
  vi.restoreAllMocks();
  window.history.replaceState(null, '', '/');
  window.sessionStorage.clear();
});

describe('an LTI launch token in the fragment', () => {
  it('is taken out of the address at once and kept in sessionStorage', async () => {
    window.history.replaceState(null, '', '/courses/lti-1#lti_token=aaa.bbb.ccc');
    const { loadToken } = await freshAuth();
    expect(loadToken()).toBe('aaa.bbb.ccc');
    expect(window.location.hash).toBe('');
    expect(window.location.pathname).toBe('/courses/lti-1');
    expect(window.sessionStorage.getItem('attendance-live.token')).toBe('aaa.bbb.ccc');
  });

  it('lives in memory where storage is blocked (an LMS iframe)', async () => {
    window.history.replaceState(null, '', '/courses/lti-1#lti_token=aaa.bbb.ccc');
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
      throw new DOMException('Access is denied', 'SecurityError');
    });
    vi.spyOn(Storage.prototype, 'getItem').mockImplementation(() => {
      throw new DOMException('Access is denied', 'SecurityError');
    });
    const { clearToken, loadToken, saveToken } = await freshAuth();
    expect(loadToken()).toBe('aaa.bbb.ccc');
    expect(loadToken()).toBe('aaa.bbb.ccc'); // again, with the fragment gone
    saveToken('ddd.eee.fff');
    expect(loadToken()).toBe('ddd.eee.fff');
    clearToken();
    expect(loadToken()).toBe(null);
  });

  it('is not read from any other fragment', async () => {
    window.history.replaceState(null, '', '/courses/x#section');
    const { loadToken } = await freshAuth();
    expect(loadToken()).toBe(null);
    expect(window.location.hash).toBe('#section');
  });
});
