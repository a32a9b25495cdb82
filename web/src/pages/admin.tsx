import { useState } from 'preact/hooks';
import { errorMessage, hay } from '../api.js';
import { ErrorBox, Loading, Page, useLoad } from '../common.js';

function split(s: string): string[] | undefined {
  const list = s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return list.length > 0 ? list : undefined;
}

function OrgKeys({ organizationId, onError }: { organizationId: string; onError: (e: string) => void }) {
  const keys = useLoad(() => hay.admin.listApiKeys.query({ organizationId }), [organizationId]);
  const [role, setRole] = useState<'admin' | 'member'>('member');
  const [plugins, setPlugins] = useState('');
  const [tools, setTools] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const id = organizationId.slice(0, 8);
  return (
    <div class="org-keys">
      <table>
        <caption>API keys</caption>
        <thead>
          <tr>
            <th scope="col">Prefix</th>
            <th scope="col">Role</th>
            <th scope="col">Restricted to</th>
            <th scope="col">Created</th>
            <th scope="col">Revoked</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {(keys.data ?? []).map((k) => (
            <tr key={k.id}>
              <td class="mono">{k.prefix}</td>
              <td>{k.role}</td>
              <td>
                {k.scopes
                  ? [...(k.scopes.plugins ?? []), ...(k.scopes.tools ?? [])].join(', ')
                  : 'everything'}
              </td>
              <td>{new Date(k.createdAt).toLocaleString()}</td>
              <td>{k.revokedAt ? new Date(k.revokedAt).toLocaleString() : '—'}</td>
              <td>
                {!k.revokedAt && (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke key ${k.prefix}`}
                    onClick={() =>
                      hay.admin.revokeApiKey
                        .mutate({ keyId: k.id })
                        .then(keys.reload, (e: unknown) => onError(errorMessage(e)))
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          const p = split(plugins);
          const t = split(tools);
          hay.admin.createApiKey
            .mutate({
              organizationId,
              role,
              ...(p || t ? { restrict: { ...(p ? { plugins: p } : {}), ...(t ? { tools: t } : {}) } } : {}),
            })
            .then(
              (k) => {
                setCreated(k.apiKey);
                keys.reload();
              },
              (err: unknown) => onError(errorMessage(err)),
            );
        }}
      >
        <div class="field">
          <label for={`key-role-${id}`}>Role</label>
          <select
            id={`key-role-${id}`}
            value={role}
            onChange={(e) => setRole(e.currentTarget.value as 'admin' | 'member')}
          >
            <option value="member">member</option>
            <option value="admin">admin</option>
          </select>
        </div>
        <div class="field">
          <label for={`key-plugins-${id}`}>Only plugins (comma separated)</label>
          <input
            id={`key-plugins-${id}`}
            value={plugins}
            onInput={(e) => setPlugins(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for={`key-tools-${id}`}>Only tools (pluginId/tool, comma separated)</label>
          <input id={`key-tools-${id}`} value={tools} onInput={(e) => setTools(e.currentTarget.value)} />
        </div>
        <button type="submit">Create key</button>
      </form>
      {created && (
        <p class="notice" role="status">
          New key (shown once): <code class="secret">{created}</code>
        </p>
      )}
    </div>
  );
}

export function Admin() {
  const orgs = useLoad(() => hay.admin.listOrganizations.query());
  const health = useLoad(() => hay.admin.health.query());
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [scan, setScan] = useState<string | null>(null);
  return (
    <Page title="Admin">
      <ErrorBox error={error ?? orgs.error ?? health.error} />
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      <section aria-labelledby="health-title">
        <h2 id="health-title">Host health</h2>
        <Loading when={health.loading && !health.data} />
        {health.data && <pre class="health">{JSON.stringify(health.data, null, 2)}</pre>}
        <button type="button" class="secondary" onClick={health.reload}>
          Refresh health
        </button>{' '}
        <button
          type="button"
          class="secondary"
          onClick={() =>
            hay.admin.rescanPlugins.mutate().then(
              (r) => setScan(JSON.stringify(r, null, 2)),
              (e: unknown) => setError(errorMessage(e)),
            )
          }
        >
          Rescan plugins
        </button>
        {scan && <pre class="scan">{scan}</pre>}
      </section>
      <section aria-labelledby="orgs-title">
        <h2 id="orgs-title">Organizations</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            hay.admin.createOrganization.mutate({ name }).then(
              (o) => {
                setNotice(`Created ${o.name}; its admin key (shown once): ${o.apiKey}`);
                setName('');
                orgs.reload();
              },
              (err: unknown) => setError(errorMessage(err)),
            );
          }}
        >
          <div class="field">
            <label for="org-name">New organization name</label>
            <input id="org-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </div>
          <button type="submit">Create organization</button>
        </form>
        {(orgs.data ?? []).map((o) => (
          <details class="card" key={o.id}>
            <summary>
              {o.name} <span class="muted mono">{o.id}</span>
            </summary>
            <OrgKeys organizationId={o.id} onError={setError} />
          </details>
        ))}
      </section>
    </Page>
  );
}
