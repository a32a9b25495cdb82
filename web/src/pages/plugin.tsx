import { useState } from 'preact/hooks';
import { errorMessage, hay, type SessionInfo } from '../api.js';
import { ConfigForm } from '../config-form.js';
import { ErrorBox, Loading, Page, useLoad } from '../common.js';
import { PluginIcon, TypeBadge } from '../icons.js';
import { missingConfig, pluginState, StateBadge } from '../plugin-state.js';
import { Markdown } from '../render-md.js';
import { SchemaForm } from '../schema-form.js';
import { ToolResult } from '../tool-result.js';

interface ToolInfo {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
}

/** Tools from tools/list (inputSchema) or the manifest's declaration (input_schema). */
function toolsOf(list: unknown): ToolInfo[] {
  if (!Array.isArray(list)) return [];
  return list
    .filter(
      (t): t is ToolInfo & { input_schema?: unknown } =>
        !!t && typeof (t as { name?: unknown }).name === 'string',
    )
    .map((t) => ({ ...t, inputSchema: t.inputSchema ?? t.input_schema }));
}

function TryTool({ pluginId, tool, onDone }: { pluginId: string; tool: ToolInfo; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [out, setOut] = useState<{ result?: unknown; error?: string; ms: number } | null>(null);
  return (
    <div class="try-tool">
      <h4>Try {tool.name}</h4>
      <SchemaForm
        idPrefix={`try-${tool.name}`}
        schema={tool.inputSchema}
        submitLabel={`Run ${tool.name}`}
        busy={busy}
        onSubmit={(args) => {
          setBusy(true);
          const started = performance.now();
          hay.plugins.invokeTool
            .mutate({ pluginId, toolName: tool.name, arguments: args })
            .then(
              (result) => setOut({ result, ms: performance.now() - started }),
              (err: unknown) => setOut({ error: errorMessage(err), ms: performance.now() - started }),
            )
            .finally(() => {
              setBusy(false);
              onDone();
            });
        }}
      />
      {out?.error !== undefined && (
        <div class="tool-result is-error" role="alert">
          <strong>Call failed</strong> <span class="muted">in {Math.round(out.ms)} ms</span>
          <pre>{out.error}</pre>
        </div>
      )}
      {out && out.error === undefined && <ToolResult result={out.result} durationMs={out.ms} />}
    </div>
  );
}

export function PluginPage({ pluginId, session }: { pluginId: string; session: SessionInfo }) {
  const plugin = useLoad(() => hay.plugins.get.query({ pluginId }), [pluginId]);
  const readme = useLoad(() => hay.plugins.readme.query({ pluginId }), [pluginId]);
  const versions = useLoad(() => hay.plugins.versions.query({ pluginId }), [pluginId]);
  const [liveTools, setLiveTools] = useState<ToolInfo[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const isAdmin = session.role === 'admin';

  const act = (label: string, fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    setMessage(null);
    fn().then(
      () => {
        setMessage(label);
        setBusy(false);
        plugin.reload();
        versions.reload();
      },
      (err: unknown) => {
        setError(errorMessage(err));
        setBusy(false);
      },
    );
  };

  const p = plugin.data;
  if (!p)
    return (
      <Page title={pluginId}>
        <ErrorBox error={plugin.error} />
        <Loading when={plugin.loading} />
      </Page>
    );
  const missing = missingConfig(p.requiredConfig, p.configuration);
  const tools = liveTools ?? toolsOf(p.tools);
  return (
    <Page title={p.name}>
      <div class="plugin-head">
        <PluginIcon icon={p.icon} type={p.type[0]} />
        <StateBadge state={pluginState(p, p)} />
        {p.type.map((t) => (
          <TypeBadge key={t} type={t} />
        ))}
        {p.category && <span class="badge category">{p.category}</span>}
        <span class="muted mono">
          {p.id} · v{p.version} · {p.sourceType}
        </span>
      </div>
      <p>{p.description ?? ''}</p>
      {p.error && (
        <div class="error" role="alert">
          <strong>Manifest invalid</strong>
          <pre>{p.error}</pre>
        </div>
      )}
      {p.install.error && (
        <div class="error" role="alert">
          <strong>Install or build failed</strong>
          <pre>{p.install.error}</pre>
        </div>
      )}
      {p.installing && (
        <p class="notice" role="status">
          Installing: {String((p.installing as { phase?: unknown }).phase ?? '')}
        </p>
      )}
      <ErrorBox error={error} />
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}

      <section aria-labelledby="cfg-title">
        <h2 id="cfg-title">Configuration</h2>
        {missing.length > 0 && p.enabled && <p class="notice">Needs configuration: {missing.join(', ')}</p>}
        {isAdmin ? (
          <ConfigForm
            key={`${p.id}-${p.enabled}`}
            schema={p.configSchema}
            configuration={p.configuration}
            busy={busy}
            submitLabel={p.enabled ? 'Save configuration' : 'Enable with this configuration'}
            onSubmit={(configuration) =>
              p.enabled
                ? act('Configuration saved', () => hay.plugins.configure.mutate({ pluginId, configuration }))
                : act('Plugin enabled', () => hay.plugins.enable.mutate({ pluginId, configuration }))
            }
          />
        ) : (
          <p class="muted">Changing settings needs an API key with the admin role.</p>
        )}
        {isAdmin && p.enabled && (
          <button
            type="button"
            class="secondary"
            disabled={busy}
            onClick={() => act('Plugin disabled', () => hay.plugins.disable.mutate({ pluginId }))}
          >
            Disable
          </button>
        )}
      </section>

      <section aria-labelledby="inst-title">
        <h2 id="inst-title">Instance</h2>
        {p.instance ? (
          <dl class="facts">
            <dt>State</dt>
            <dd>{p.instance.state}</dd>
            <dt>PID</dt>
            <dd>{p.instance.pid ?? '—'}</dd>
            <dt>Last error</dt>
            <dd>
              <pre>{p.instance.lastError ?? '—'}</pre>
            </dd>
          </dl>
        ) : (
          <p class="muted">No instance for this organization (it starts on the first call).</p>
        )}
      </section>

      <PluginLog pluginId={pluginId} />

      <section aria-labelledby="tools-title">
        <h2 id="tools-title">Tools</h2>
        {p.enabled && (
          <button
            type="button"
            class="secondary"
            disabled={busy}
            onClick={() => {
              setBusy(true);
              hay.plugins.listTools
                .query({ pluginId })
                .then(
                  (t) => setLiveTools(toolsOf(t)),
                  (err: unknown) => setError(errorMessage(err)),
                )
                .finally(() => setBusy(false));
            }}
          >
            Load tools from the running plugin
          </button>
        )}
        {tools.length === 0 && <p class="muted">No tools declared.</p>}
        {tools.map((t) => (
          <article class="tool card" key={t.name} aria-label={`Tool ${t.name}`}>
            <h3 class="mono">{t.name}</h3>
            {t.title && <p>{t.title}</p>}
            <p>{t.description ?? ''}</p>
            <details>
              <summary>Input schema</summary>
              <pre>{JSON.stringify(t.inputSchema ?? {}, null, 2)}</pre>
            </details>
            {p.enabled ? (
              <TryTool pluginId={pluginId} tool={t} onDone={plugin.reload} />
            ) : (
              <p class="muted">Enable the plugin to try it.</p>
            )}
          </article>
        ))}
      </section>

      <section aria-labelledby="ver-title">
        <h2 id="ver-title">Versions</h2>
        <ErrorBox error={versions.error} />
        {versions.data && (
          <>
            <p>Running: {versions.data.running ?? '—'}</p>
            {versions.data.versions.length === 0 && <p class="muted">No kept versions.</p>}
            {versions.data.versions.length > 0 && (
              <table>
                <caption class="sr-only">Kept versions</caption>
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">State</th>
                    <th scope="col">Created</th>
                    <th scope="col">Error</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  {versions.data.versions.map((v) => (
                    <tr key={v.id}>
                      <td class="mono">{v.version}</td>
                      <td>{v.state}</td>
                      <td>{new Date(v.createdAt).toLocaleString()}</td>
                      <td>
                        <pre>{v.error ?? ''}</pre>
                      </td>
                      <td>
                        {isAdmin && v.version !== versions.data?.running && (
                          <button
                            type="button"
                            class="secondary"
                            disabled={busy}
                            onClick={() =>
                              act(`Pinned to ${v.version}`, () =>
                                hay.plugins.pinVersion.mutate({ pluginId, versionId: v.id }),
                              )
                            }
                          >
                            Roll back to {v.version}
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {isAdmin && versions.data.versions.length > 0 && (
              <button
                type="button"
                class="secondary"
                disabled={busy}
                onClick={() =>
                  act('Following the latest version', () => hay.plugins.unpinVersion.mutate({ pluginId }))
                }
              >
                Follow latest version
              </button>
            )}
          </>
        )}
      </section>

      <section aria-labelledby="readme-title">
        <h2 id="readme-title">README</h2>
        {readme.data?.markdown ? <Markdown source={readme.data.markdown} /> : <p class="muted">No README.</p>}
      </section>
    </Page>
  );
}

/** The last stderr lines of this organization's instance (plugins.logs), shown as plain text. */
function PluginLog({ pluginId }: { pluginId: string }) {
  const logs = useLoad(() => hay.plugins.logs.query({ pluginId, lines: 200 }), [pluginId]);
  const lines = logs.data?.lines ?? [];
  return (
    <section aria-labelledby="log-title">
      <h2 id="log-title">Log</h2>
      <button type="button" onClick={logs.reload} disabled={logs.loading}>
        Refresh log
      </button>
      <ErrorBox error={logs.error} />
      {logs.data?.shared ? (
        <p class="muted">
          This plugin runs one shared instance for every organization; its log is not shown.
        </p>
      ) : lines.length === 0 ? (
        <p class="muted">No stderr lines from this organization's instance.</p>
      ) : (
        <pre class="plugin-log" tabIndex={0} aria-label="Last stderr lines">
          {lines.join('\n')}
        </pre>
      )}
    </section>
  );
}
