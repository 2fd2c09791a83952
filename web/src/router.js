// Client-side routing with the history API: two routes do not need a library.
import { useEffect, useState } from 'react';

const listeners = new Set();

export function navigate(path, { replace = false } = {}) {
  if (path === window.location.pathname) return;
  if (replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
  for (const listener of listeners) listener(window.location.pathname);
}

export function usePathname() {
  const [pathname, setPathname] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPathname(window.location.pathname);
    listeners.add(setPathname);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(setPathname);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return pathname;
}

const ROUTES = [
  [/^\/courses\/([^/]+)\/?$/, 'course', 'courseId'],
  [/^\/courses\/([^/]+)\/roster\/?$/, 'roster', 'courseId'],
  [/^\/join\/([^/]+)\/?$/, 'join', 'code'],
  [/^\/check-in\/([^/]+)\/?$/, 'check-in', 'sessionId'],
  [/^\/sessions\/([^/]+)\/projector\/?$/, 'projector', 'sessionId'],
];

/**
 * @returns {{name: 'courses'} | {name: 'course', courseId: string}
 *   | {name: 'roster', courseId: string} | {name: 'join', code: string}
 *   | {name: 'check-in', sessionId: string} | {name: 'projector', sessionId: string} | {name: 'not-found'}}
 */
export function matchRoute(pathname) {
  if (pathname === '/' || pathname === '/courses' || pathname === '/courses/') return { name: 'courses' };
  if (pathname === '/join' || pathname === '/join/') return { name: 'join', code: '' };
  for (const [pattern, name, key] of ROUTES) {
    const match = pattern.exec(pathname);
    if (!match) continue;
    try {
      return { name, [key]: decodeURIComponent(match[1]) };
    } catch {
      return { name: 'not-found' };
    }
  }
  return { name: 'not-found' };
}

export function coursePath(courseId) {
  return `/courses/${encodeURIComponent(courseId)}`;
}

export function rosterPath(courseId) {
  return `${coursePath(courseId)}/roster`;
}

/** A real link (middle-click and copy work) that navigates in place on a plain click. */
export function linkHandler(path) {
  return (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(path);
  };
}

let navigatedInApp = false;
listeners.add(() => {
  navigatedInApp = true;
});
if (typeof window !== 'undefined') {
  window.addEventListener('popstate', () => {
    navigatedInApp = true;
  });
}

/** True once the user has moved between pages in this tab (not on first load). */
export function hasNavigated() {
  return navigatedInApp;
}
