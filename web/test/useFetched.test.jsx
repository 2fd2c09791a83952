import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import useFetched from '../src/hooks/useFetched.js';

/** A load function whose answers the test releases by hand, in any order. */
function manualLoad() {
  const pending = [];
  const load = vi.fn((path) => new Promise((resolve, reject) => pending.push({ path, resolve, reject })));
  return { load, pending };
}

afterEach(cleanup);

describe('useFetched', () => {
  it('loads the path and keeps the data', async () => {
    const { load, pending } = manualLoad();
    const { result } = renderHook(() => useFetched('/api/a', { load }));
    expect(result.current).toMatchObject({ data: null, error: null, loading: true });
    await act(async () => pending[0].resolve({ a: 1 }));
    expect(result.current).toMatchObject({ data: { a: 1 }, error: null, loading: false });
    expect(load).toHaveBeenCalledTimes(1);
    expect(load).toHaveBeenCalledWith('/api/a');
  });

  it('drops an answer for a path it no longer shows, even when it arrives last', async () => {
    const { load, pending } = manualLoad();
    const { result, rerender } = renderHook(({ path }) => useFetched(path, { load }), { initialProps: { path: '/old' } });
    rerender({ path: '/new' });
    expect(result.current.data).toBeNull();
    await act(async () => pending[1].resolve('new'));
    await act(async () => pending[0].resolve('old'));
    expect(result.current.data).toBe('new');
  });

  it('keeps showing the data while a refresh loads, then shows the new one', async () => {
    const { load, pending } = manualLoad();
    const { result, rerender } = renderHook(({ key }) => useFetched('/api/a', { load, refreshKey: key }), {
      initialProps: { key: 1 },
    });
    await act(async () => pending[0].resolve('first'));
    rerender({ key: 2 });
    expect(load).toHaveBeenCalledTimes(2);
    expect(result.current).toMatchObject({ data: 'first', loading: false });
    await act(async () => pending[1].resolve('second'));
    expect(result.current.data).toBe('second');
  });

  it('reports an error, and a failed refresh keeps the data it had', async () => {
    const { load, pending } = manualLoad();
    const { result } = renderHook(() => useFetched('/api/a', { load }));
    await act(async () => pending[0].resolve('kept'));
    act(() => result.current.reload());
    const failure = Object.assign(new Error('Service down'), { status: 503, detail: 'Service down' });
    await act(async () => pending[1].reject(failure));
    expect(result.current).toMatchObject({ data: 'kept', error: failure, loading: false });
  });

  it('loads nothing without a path, and nothing after unmount reaches the state', async () => {
    const { load, pending } = manualLoad();
    const none = renderHook(() => useFetched(null, { load }));
    expect(none.result.current).toMatchObject({ data: null, loading: false });
    expect(load).not.toHaveBeenCalled();

    const errors = vi.spyOn(console, 'error');
    const { result, unmount } = renderHook(() => useFetched('/api/a', { load }));
    unmount();
    await act(async () => pending[0].resolve('late'));
    expect(result.current.data).toBeNull();
    expect(errors).not.toHaveBeenCalled();
  });

  it('starts empty for a new load function (another signed-in user)', async () => {
    const first = manualLoad();
    const second = manualLoad();
    const { result, rerender } = renderHook(({ load }) => useFetched('/api/me', { load }), {
      initialProps: { load: first.load },
    });
    await act(async () => first.pending[0].resolve({ id: 'ann' }));
    rerender({ load: second.load });
    expect(result.current).toMatchObject({ data: null, loading: true });
    await act(async () => second.pending[0].resolve({ id: 'bob' }));
    await waitFor(() => expect(result.current.data).toEqual({ id: 'bob' }));
  });
});
