import { cleanup, renderHook } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { tokenExpiry } from '../src/auth.js';
import useTokenLifetime, { RENEW_AHEAD_MS } from '../src/hooks/useTokenLifetime.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

/** An unsigned JWT-shaped token: the dashboard only reads its `exp`. */
function tokenFor(claims) {
  const part = (value) => btoa(JSON.stringify(value)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.signature`;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe('tokenExpiry', () => {
  it('reads exp in milliseconds, and null for anything else', () => {
    expect(tokenExpiry(tokenFor({ sub: 'u', exp: NOW / 1000 + 90 }))).toBe(NOW + 90_000);
    expect(tokenExpiry(tokenFor({ sub: 'u' }))).toBeNull();
    expect(tokenExpiry(tokenFor({ sub: 'u', exp: '123' }))).toBeNull();
    expect(tokenExpiry('not-a-token')).toBeNull();
    expect(tokenExpiry(null)).toBeNull();
  });
});

describe('useTokenLifetime', () => {
  it('renews a minute before expiry and never expires a renewed token', async () => {
    const token = tokenFor({ sub: 'u', exp: NOW / 1000 + 600 });
    const fresh = tokenFor({ sub: 'u', exp: NOW / 1000 + 1200 });
    const renew = vi.fn(async () => fresh);
    const onRenewed = vi.fn();
    const expire = vi.fn();
    renderHook(() => useTokenLifetime(token, { renew, onRenewed, expire }));
    await vi.advanceTimersByTimeAsync(600_000 - RENEW_AHEAD_MS - 1);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(onRenewed).toHaveBeenCalledWith(fresh);
    expect(expire).not.toHaveBeenCalled();
  });

  it('signs out at the moment of expiry when no fresh token can be had', async () => {
    const token = tokenFor({ sub: 'u', exp: NOW / 1000 + 30 });
    const renew = vi.fn(async () => {
      throw new Error('404: demo mode is off');
    });
    const onRenewed = vi.fn();
    const expire = vi.fn();
    renderHook(() => useTokenLifetime(token, { renew, onRenewed, expire }));
    await vi.advanceTimersByTimeAsync(15_000); // a short lifetime: renewal halfway through
    expect(renew).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(expire).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(expire).toHaveBeenCalledTimes(1);
    expect(onRenewed).not.toHaveBeenCalled();
  });

  it('ignores a "fresh" token that ends no later than the old one', async () => {
    const token = tokenFor({ sub: 'u', exp: NOW / 1000 + 120 });
    const renew = vi.fn(async () => token);
    const onRenewed = vi.fn();
    const expire = vi.fn();
    renderHook(() => useTokenLifetime(token, { renew, onRenewed, expire }));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(onRenewed).not.toHaveBeenCalled();
    expect(expire).toHaveBeenCalledTimes(1);
  });

  it('does nothing for a token without exp, and cancels its timers on unmount', async () => {
    const renew = vi.fn(async () => null);
    const expire = vi.fn();
    const { unmount } = renderHook(() =>
      useTokenLifetime(tokenFor({ sub: 'u', exp: NOW / 1000 + 100 }), { renew, onRenewed: vi.fn(), expire }),
    );
    unmount();
    renderHook(() => useTokenLifetime(tokenFor({ sub: 'u' }), { renew, onRenewed: vi.fn(), expire }));
    await vi.advanceTimersByTimeAsync(200_000);
    expect(renew).not.toHaveBeenCalled();
    expect(expire).not.toHaveBeenCalled();
  });
});
