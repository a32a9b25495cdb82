import { TRPCClientError } from '@trpc/client';
import { useState } from 'preact/hooks';
import { errorMessage, hay, type Outputs } from '../api.js';
import { ErrorBox, Page, useLoad } from '../common.js';
import { SchemaForm } from '../schema-form.js';
import { ToolResult } from '../tool-result.js';

type TestResult = Outputs['builder']['test'];

/** A starting definition (the shape of docs/PLUGIN_API.md "No-code HTTP plugins"). */
const EXAMPLE = {
  id: 'my-http-plugin',
  name: 'My HTTP plugin',
  description: 'Calls our API',
  config: [
    { name: 'baseUrl', type: 'url', required: true, description: 'e.g. https://api.example.com/v1' },
    { name: 'apiKey', type: 'string', required: false, encrypted: true },
  ],
  tools: [
    {
      name: 'get_item',
      description: 'Fetches one item',
      parameters: [{ name: 'id', type: 'string', required: true }],
      method: 'GET',
      url: '{{config.baseUrl}}/items/{{params.id}}',
      headers: { Authorization: 'Bearer {{config.apiKey}}' },
      response: { kind: 'json' },
    },
  ],
};

interface Problem {
  pointer?: string;
  message: string;
}

function problemsOf(err: unknown): Problem[] {
  if (!(err instanceof TRPCClientError)) return [];
  const details = (err.data as { details?: { problems?: unknown } } | undefined)?.details;
  return Array.isArray(details?.problems)
    ? details.problems.map((p) => {
        const o = (p ?? {}) as { pointer?: unknown; message?: unknown };
        return {
          ...(typeof o.pointer === 'string' ? { pointer: o.pointer } : {}),
          message: typeof o.message === 'string' ? o.message : JSON.stringify(p),
        };
      })
    : [];
}

interface Param {
  name: string;
  type?: string;
  required?: boolean;
  description?: string;
  enum?: unknown[];
}

/** The JSON Schema the runtime derives from a tool's parameters, for the test form. */
function schemaOf(params: Param[]): unknown {
  return {
    type: 'object',
    properties: Object.fromEntries(
      params.map((p) => [
        p.name,
        { type: p.type ?? 'string', description: p.description, ...(p.enum ? { enum: p.enum } : {}) },
      ]),
    ),
    required: params.filter((p) => p.required).map((p) => p.name),
  };
}

/**
 * The no-code plugin builder (`builder.*`): edit a definition (JSON), test one tool against the live
 * endpoint, save it as a custom plugin of the organization (validated, versioned like an upload).
 */
export function Builder() {
  const saved = useLoad(() => hay.builder.list.query());
  const [text, setText] = useState(() => JSON.stringify(EXAMPLE, null, 2));
  const [configText, setConfigText] = useState('{}');
  const [toolName, setToolName] = useState('');
  const [version, setVersion] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [notice, setNotice] = useState<{ pluginId: string; version: string } | null>(null);
  const [test, setTest] = useState<TestResult | null>(null);
  const [busy, setBusy] = useState(false);

  let parsed: { tools?: { name?: unknown; parameters?: Param[] }[] } | undefined;
  let parseError: string | null = null;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (err) {
    parseError = err instanceof Error ? err.message : String(err);
  }
  const tools = (parsed?.tools ?? []).filter(
    (t): t is { name: string; parameters?: Param[] } => typeof t.name === 'string',
  );
  const tool = tools.find((t) => t.name === toolName) ?? tools[0];

  const fail = (err: unknown) => {
    setError(errorMessage(err));
    setProblems(problemsOf(err));
  };
  const start = () => {
    setBusy(true);
    setError(null);
    setProblems([]);
    setNotice(null);
  };

  return (
    <Page title="Plugin builder">
      <p>
        Define tools that call an HTTP API; templates reference <code>{'{{config.<name>}}'}</code> and{' '}
        <code>{'{{params.<name>}}'}</code>. Saving creates (or versions) a custom plugin of this organization.
      </p>
      {(saved.data ?? []).length > 0 && (
        <section aria-labelledby="saved-title">
          <h2 id="saved-title">Saved no-code plugins</h2>
          <ul>
            {(saved.data ?? []).map((p) => (
              <li key={p.pluginId}>
                <a href={`/plugins/${encodeURIComponent(p.pluginId)}`}>{p.pluginId}</a> v{p.version} (
                {p.status}){' '}
                <button
                  type="button"
                  class="secondary"
                  aria-label={`Edit ${p.pluginId}`}
                  onClick={() =>
                    hay.builder.get
                      .query({ pluginId: p.pluginId })
                      .then((v) => setText(JSON.stringify(v.definition, null, 2)), fail)
                  }
                >
                  Edit
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <div class="field">
        <label for="builder-definition">Definition (JSON)</label>
        <textarea
          id="builder-definition"
          class="mono"
          rows={22}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        {parseError && (
          <p class="error" role="alert">
            Not valid JSON: {parseError}
          </p>
        )}
      </div>
      <ErrorBox error={error} />
      {problems.length > 0 && (
        <table class="problems">
          <caption>Definition problems by JSON pointer</caption>
          <thead>
            <tr>
              <th scope="col">Pointer</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {problems.map((p, i) => (
              <tr key={i}>
                <td class="mono">{p.pointer ?? ''}</td>
                <td>{p.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <section aria-labelledby="test-title">
        <h2 id="test-title">Test a tool against the live endpoint</h2>
        <div class="filters">
          <div class="field">
            <label for="builder-tool">Tool</label>
            <select
              id="builder-tool"
              value={tool?.name ?? ''}
              onChange={(e) => setToolName(e.currentTarget.value)}
            >
              {tools.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="builder-config">Configuration for the test (JSON)</label>
            <textarea
              id="builder-config"
              class="mono"
              rows={3}
              value={configText}
              onInput={(e) => setConfigText(e.currentTarget.value)}
            />
          </div>
        </div>
        {tool && parsed && (
          <SchemaForm
            key={tool.name}
            idPrefix={`builder-${tool.name}`}
            schema={schemaOf(tool.parameters ?? [])}
            submitLabel={`Test ${tool.name}`}
            busy={busy}
            onSubmit={(params) => {
              let configuration: Record<string, unknown>;
              try {
                configuration = JSON.parse(configText) as Record<string, unknown>;
              } catch {
                setError('The test configuration is not valid JSON');
                return;
              }
              start();
              setTest(null);
              hay.builder.test
                .mutate({
                  definition: parsed as Record<string, unknown>,
                  toolName: tool.name,
                  params,
                  configuration,
                })
                .then(setTest, fail)
                .finally(() => setBusy(false));
            }}
          />
        )}
        {test && (
          <div class="builder-test">
            <p>
              HTTP status: <strong>{test.status ?? 'no response'}</strong>
            </p>
            {test.request && (
              <details>
                <summary>Request sent</summary>
                <pre>{JSON.stringify(test.request, null, 2)}</pre>
              </details>
            )}
            <ToolResult result={test.result} durationMs={test.durationMs} />
          </div>
        )}
      </section>

      <section aria-labelledby="save-title">
        <h2 id="save-title">Save</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!parsed) return;
            start();
            hay.builder.save
              .mutate({
                definition: parsed as Record<string, unknown>,
                ...(version.trim() ? { version: version.trim() } : {}),
              })
              .then((r) => {
                setNotice({ pluginId: r.pluginId, version: r.version });
                saved.reload();
              }, fail)
              .finally(() => setBusy(false));
          }}
        >
          <div class="field">
            <label for="builder-version">Version (empty: next patch)</label>
            <input id="builder-version" value={version} onInput={(e) => setVersion(e.currentTarget.value)} />
          </div>
          <button type="submit" disabled={busy || !parsed}>
            Save plugin
          </button>
        </form>
        {notice && (
          <p class="notice" role="status">
            Saved <a href={`/plugins/${encodeURIComponent(notice.pluginId)}`}>{notice.pluginId}</a> v
            {notice.version}
          </p>
        )}
      </section>
    </Page>
  );
}
