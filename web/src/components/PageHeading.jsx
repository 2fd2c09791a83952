import { useEffect, useRef } from 'react';
import { hasNavigated } from '../router.js';

/**
 * The page's h1. It names the tab, and after an in-app navigation it takes the
 * focus so that keyboard and screen-reader users start at the new page's top.
 */
export default function PageHeading({ id, title, children }) {
  const ref = useRef(null);
  useEffect(() => {
    document.title = `${title} · attendance-live`;
  }, [title]);
  useEffect(() => {
    if (hasNavigated()) ref.current?.focus();
  }, []);
  return (
    <h1 id={id} ref={ref} tabIndex={-1}>
      {children ?? title}
    </h1>
  );
}
