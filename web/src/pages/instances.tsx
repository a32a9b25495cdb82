import { useState } from 'preact/hooks';
import { errorMessage, hay, type SessionInfo } from '../api.js';
import { ErrorBox, formatBytes, formatDuration, Loading, Page, useLoad } from '../common.js';

export function Instances({ session }: { session: SessionInfo }) {
  const list = useLoad(() => hay.plugins.instances.query());
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const act = (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    fn()
      .then(
        () => list.reload(),
        (err: unknown) => setError(errorMessage(err)),
      )
      .finally(() => setBusy(false));
  };
  const now = Date.now();
  return (
    <Page
      title="Instances"
      actions={
        <button type="button" class="secondary" onClick={list.reload}>
          Refresh
        </button>
      }
    >
      <ErrorBox error={list.error ?? error} />
      <Loading when={list.loading && !list.data} />
      {list.data && list.data.length === 0 && <p class="muted">No instances run for this organization.</p>}
      {list.data && list.data.length > 0 && (
        <table>
          <caption class="sr-only">Instances of this organization</caption>
          <thead>
            <tr>
              <th scope="col">Plugin</th>
              <th scope="col">Version</th>
              <th scope="col">State</th>
              <th scope="col">PID</th>
              <th scope="col">Memory</th>
              <th scope="col">CPU time</th>
              <th scope="col">Uptime</th>
              <th scope="col">In flight</th>
              <th scope="col">Last error</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((i) => (
              <tr key={i.pluginKey}>
                <td>
                  <a href={`/plugins/${encodeURIComponent(i.pluginId)}`}>{i.pluginId}</a>
                  {i.shared && <span class="badge"> shared</span>}
                </td>
                <td class="mono">{i.version}</td>
                <td>{i.state}</td>
                <td>{i.pid ?? '—'}</td>
                <td>{formatBytes(i.usage?.rssBytes)}</td>
                <td>{i.usage ? `${i.usage.cpuSeconds.toFixed(2)} s` : '—'}</td>
                <td>{i.startedAt ? formatDuration(now - i.startedAt) : '—'}</td>
                <td>{i.inFlight}</td>
                <td>
                  <pre>{i.lastError ?? ''}</pre>
                </td>
                <td>
                  {session.role === 'admin' && !i.shared && (
                    <>
                      <button
                        type="button"
                        class="secondary"
                        disabled={busy}
                        aria-label={`Stop ${i.pluginId}`}
                        onClick={() => act(() => hay.plugins.stopInstance.mutate({ pluginId: i.pluginId }))}
                      >
                        Stop
                      </button>{' '}
                      <button
                        type="button"
                        class="secondary"
                        disabled={busy}
                        aria-label={`Restart ${i.pluginId}`}
                        onClick={() =>
                          act(() => hay.plugins.restartInstance.mutate({ pluginId: i.pluginId }))
                        }
                      >
                        Restart
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
