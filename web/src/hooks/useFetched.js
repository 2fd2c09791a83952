// Load something for a component and keep it: the one copy of the
// fetch-with-cancel effect. A response that arrives after the component has
// unmounted, or after its inputs changed, is dropped.
import { useCallback, useEffect, useState } from 'react';
import { useApi } from '../session.js';

/**
 * @param {string|null} path what to load (`null`: nothing)
 * @param {{refreshKey?: unknown, load?: (path: string) => Promise<unknown>}} [options]
 *   `refreshKey`: load again whenever it changes, showing the data already
 *   loaded meanwhile; `load`: how to load (default: the signed-in `request`,
 *   which signs the tab out on a 401). A new `path` or `load` starts empty.
 * @returns {{data: any, error: import('../api.js').ApiError|null, loading: boolean,
 *   setData: (data: any) => void, reload: () => void}}
 */
export default function useFetched(path, { refreshKey, load } = {}) {
  const { request } = useApi();
  const fetcher = load ?? request;
  const [state, setState] = useState({ path: null, fetcher: null, data: null, error: null });
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    if (!path) return undefined;
    let cancelled = false;
    const settle = (data, error) => {
      if (!cancelled) setState((current) => {
        const same = current.path === path && current.fetcher === fetcher;
        return { path, fetcher, data: error && same ? current.data : data, error };
      });
    };
    fetcher(path).then((data) => settle(data, null), (error) => settle(null, error));
    return () => {
      cancelled = true;
    };
  }, [path, fetcher, refreshKey, reloads]);

  const current = path != null && state.path === path && state.fetcher === fetcher;
  const setData = useCallback((data) => setState({ path, fetcher, data, error: null }), [path, fetcher]);
  const reload = useCallback(() => setReloads((n) => n + 1), []);
  return {
    data: current ? state.data : null,
    error: current ? state.error : null,
    loading: path != null && !current,
    setData,
    reload,
  };
}
