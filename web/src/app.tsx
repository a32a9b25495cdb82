import { useEffect, useState } from 'preact/hooks';
import { currentSession, errorMessage, signOut, type SessionInfo } from './api.js';
import { ErrorBox } from './common.js';
import { Admin } from './pages/admin.js';
import { Analytics } from './pages/analytics.js';
import { Audit } from './pages/audit.js';
import { Builder } from './pages/builder.js';
import { Instances } from './pages/instances.js';
import { Marketplace } from './pages/marketplace.js';
import { PluginPage } from './pages/plugin.js';
import { SignIn } from './pages/sign-in.js';
import { Upload } from './pages/upload.js';
import { navigate, onLinkClick, useLocation } from './router.js';

const ORG_NAV = [
  ['/marketplace', 'Marketplace'],
  ['/instances', 'Instances'],
  ['/analytics', 'Analytics'],
  ['/audit', 'Audit log'],
  ['/upload', 'Upload'],
  ['/builder', 'Builder'],
] as const;
const ADMIN_NAV = [
  ['/admin', 'Admin'],
  ['/audit', 'Audit log'],
] as const;

function Route({ path, session }: { path: string; session: SessionInfo }) {
  const plugin = /^\/plugins\/([^/]+)$/.exec(path);
  if (session.kind === 'admin') {
    if (path === '/audit') return <Audit session={session} />;
    return <Admin />;
  }
  if (plugin?.[1]) return <PluginPage pluginId={decodeURIComponent(plugin[1])} session={session} />;
  switch (path) {
    case '/instances':
      return <Instances session={session} />;
    case '/analytics':
      return <Analytics />;
    case '/audit':
      return <Audit session={session} />;
    case '/upload':
      return <Upload />;
    case '/builder':
      return <Builder />;
    default:
      return <Marketplace session={session} />;
  }
}

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const { path } = useLocation();
  useEffect(() => {
    currentSession().then(setSession, (err: unknown) => {
      setError(errorMessage(err));
      setSession(null);
    });
  }, []);
  // focus the page heading after navigation, for keyboard and screen-reader users
  useEffect(() => {
    document.getElementById('page-title')?.focus();
  }, [path]);
  if (session === undefined) return <p class="muted">Loading…</p>;
  const nav = session?.kind === 'admin' ? ADMIN_NAV : session ? ORG_NAV : [];
  return (
    <div class="layout" onClick={onLinkClick}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          Hay
        </a>
        {session && (
          <nav aria-label="Main">
            <ul>
              {nav.map(([href, label]) => (
                <li key={href}>
                  <a href={href} aria-current={path === href ? 'page' : undefined}>
                    {label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        {session && (
          <div class="who">
            <span>
              {session.kind === 'admin'
                ? 'Operator (admin token)'
                : `${session.organizationName ?? session.organizationId ?? ''} · ${session.role ?? ''} key ${session.keyPrefix ?? ''}`}
            </span>
            <button
              type="button"
              class="secondary"
              onClick={() =>
                signOut().then(
                  () => {
                    setSession(null);
                    navigate('/');
                  },
                  (err: unknown) => setError(errorMessage(err)),
                )
              }
            >
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main">
        <ErrorBox error={error} />
        {session ? (
          <Route path={path} session={session} />
        ) : (
          <SignIn
            onSignedIn={(s) => {
              setError(null);
              setSession(s);
              navigate(s.kind === 'admin' ? '/admin' : '/marketplace');
            }}
          />
        )}
      </main>
    </div>
  );
}
