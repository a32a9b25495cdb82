import { useEffect, useState } from 'preact/hooks';

/** The page's path routing (History API); the host answers index.html for every non-API path. */
export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useLocation(): { path: string; query: URLSearchParams } {
  const [loc, setLoc] = useState(() => ({ path: location.pathname, search: location.search }));
  useEffect(() => {
    const on = () => setLoc({ path: location.pathname, search: location.search });
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return { path: loc.path, query: new URLSearchParams(loc.search) };
}

/** Intercepts plain left clicks on same-origin links so they route without a reload. */
export function onLinkClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest('a');
  if (!a || a.target === '_blank' || a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
