import { TRPCClientError } from '@trpc/client';
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { errorMessage, hay, type Outputs } from '../api.js';
import { ErrorBox, Page, useLoad } from '../common.js';
import { SchemaForm } from '../schema-form.js';
import { ToolResult } from '../tool-result.js';
import {
  anchorOf,
  anchorsOf,
  CONFIG_TYPES,
  escapePointerKey,
  fromDefinition,
  localProblems,
  METHODS,
  newConfigRow,
  newParamRow,
  newTool,
  PARAM_TYPES,
  referencesOf,
  toDefinition,
  type Model,
  type ToolModel,
} from './builder-model.js';

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

const blank = (): Model => ({ id: '', name: '', description: '', config: [], tools: [newTool()], extra: {} });

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

/** The JSON Schema the runtime derives from a tool's parameters, for the test form. */
function schemaOf(params: unknown): unknown {
  const list = (Array.isArray(params) ? params : []) as {
    name: string;
    type: string;
    description?: string;
    required?: boolean;
    enum?: unknown[];
  }[];
  return {
    type: 'object',
    properties: Object.fromEntries(
      list
        .filter((p) => p.name)
        .map((p) => [
          p.name,
          { type: p.type, description: p.description, ...(p.enum ? { enum: p.enum } : {}) },
        ]),
    ),
    required: list.filter((p) => p.required && p.name).map((p) => p.name),
  };
}

/** Where each server problem is shown: a field's anchor pointer, or the list at the top. */
interface Placed {
  at: Map<string, string[]>;
  unmatched: Problem[];
}

function place(problems: Problem[], model: Model): Placed {
  const anchors = anchorsOf(model);
  const at = new Map<string, string[]>();
  const unmatched: Problem[] = [];
  for (const p of problems) {
    const a = p.pointer === undefined ? undefined : anchorOf(p.pointer, anchors);
    if (a === undefined) unmatched.push(p);
    else at.set(a, [...(at.get(a) ?? []), p.message]);
  }
  return { at, unmatched };
}

/** DOM id of the problem list of one anchor pointer. */
const problemId = (anchor: string) =>
  `bp${anchor.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;

function FieldProblems(props: { placed: Placed; anchor: string }) {
  const messages = props.placed.at.get(props.anchor);
  if (!messages) return null;
  return (
    <ul class="field-problems" id={problemId(props.anchor)}>
      {messages.map((m, i) => (
        <li key={i}>{m}</li>
      ))}
    </ul>
  );
}

/** `aria-invalid`/`aria-describedby` for a control whose anchor has problems. */
function invalid(placed: Placed, anchor: string) {
  return placed.at.has(anchor) ? { 'aria-invalid': true, 'aria-describedby': problemId(anchor) } : {};
}

function Text(props: {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  placed: Placed;
  anchor: string;
  mono?: boolean;
  rows?: number;
  help?: ComponentChildren;
}) {
  const common = {
    id: props.id,
    value: props.value,
    class: props.mono ? 'mono' : undefined,
    spellcheck: false,
    ...invalid(props.placed, props.anchor),
  };
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.rows ? (
        <textarea {...common} rows={props.rows} onInput={(e) => props.onInput(e.currentTarget.value)} />
      ) : (
        <input {...common} onInput={(e) => props.onInput(e.currentTarget.value)} />
      )}
      {props.help && <p class="help">{props.help}</p>}
      <FieldProblems placed={props.placed} anchor={props.anchor} />
    </div>
  );
}

function Select(props: {
  id: string;
  label: string;
  value: string;
  options: string[];
  onChange: (v: string) => void;
  placed: Placed;
  anchor: string;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value)}
        {...invalid(props.placed, props.anchor)}
      >
        {props.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
      <FieldProblems placed={props.placed} anchor={props.anchor} />
    </div>
  );
}

function Check(props: {
  id: string;
  label: string;
  checked: boolean;
  onChange: (v: boolean) => void;
  placed: Placed;
  anchor: string;
}) {
  return (
    <div class="field checkbox">
      <input
        type="checkbox"
        id={props.id}
        checked={props.checked}
        onChange={(e) => props.onChange(e.currentTarget.checked)}
        {...invalid(props.placed, props.anchor)}
      />
      <label for={props.id}>{props.label}</label>
      <FieldProblems placed={props.placed} anchor={props.anchor} />
    </div>
  );
}

/** Applies a change to a copy of the model; `reindex` (a row removed) drops the server's problems, whose
 * pointers would name other rows now. */
type Update = (change: (m: Model) => void, reindex?: boolean) => void;

function ToolEditor(props: { model: Model; index: number; update: Update; placed: Placed }) {
  const { model, index: ti, update, placed } = props;
  const t = model.tools[ti] as ToolModel;
  const base = `/tools/${ti}`;
  const id = `b-tools-${ti}`;
  const tool = (change: (t: ToolModel) => void) =>
    update((m) => {
      const x = m.tools[ti];
      if (x) change(x);
    });
  const refs = referencesOf(model, t);
  const title = `Tool ${ti + 1}${t.name ? `: ${t.name}` : ''}`;
  return (
    <fieldset class="builder-tool">
      <legend>{title}</legend>
      <FieldProblems placed={placed} anchor={base} />
      <div class="filters">
        <Text
          id={`${id}-name`}
          label="Tool name"
          value={t.name}
          onInput={(v) => tool((x) => (x.name = v))}
          placed={placed}
          anchor={`${base}/name`}
        />
        <Select
          id={`${id}-method`}
          label="Method"
          value={t.method}
          options={METHODS}
          onChange={(v) => tool((x) => (x.method = v))}
          placed={placed}
          anchor={`${base}/method`}
        />
      </div>
      <Text
        id={`${id}-description`}
        label="Tool description"
        value={t.description}
        onInput={(v) => tool((x) => (x.description = v))}
        placed={placed}
        anchor={`${base}/description`}
      />
      <p class="help" id={`${id}-refs`}>
        References available in this tool's templates:{' '}
        {refs.length === 0
          ? 'none yet (add configuration fields or parameters)'
          : refs.map((r, i) => (
              <span key={r}>
                {i > 0 && ', '}
                <code>{r}</code>
              </span>
            ))}
      </p>
      <Text
        id={`${id}-url`}
        label="URL template"
        value={t.url}
        mono
        onInput={(v) => tool((x) => (x.url = v))}
        placed={placed}
        anchor={`${base}/url`}
        help="Starts with http(s):// and a literal host, or with a url-typed configuration field."
      />

      <fieldset>
        <legend>Parameters of {t.name || `tool ${ti + 1}`}</legend>
        <FieldProblems placed={placed} anchor={`${base}/parameters`} />
        {t.parameters.map((p, pi) => {
          const pb = `${base}/parameters/${pi}`;
          const pid = `${id}-parameters-${pi}`;
          const param = (change: (p: ToolModel['parameters'][number]) => void) =>
            tool((x) => {
              const y = x.parameters[pi];
              if (y) change(y);
            });
          return (
            <div class="builder-row" key={pi} role="group" aria-label={`Parameter ${pi + 1}`}>
              <FieldProblems placed={placed} anchor={pb} />
              <Text
                id={`${pid}-name`}
                label={`Parameter ${pi + 1} name`}
                value={p.name}
                onInput={(v) => param((y) => (y.name = v))}
                placed={placed}
                anchor={`${pb}/name`}
              />
              <Select
                id={`${pid}-type`}
                label={`Parameter ${pi + 1} type`}
                value={p.type}
                options={PARAM_TYPES}
                onChange={(v) => param((y) => (y.type = v))}
                placed={placed}
                anchor={`${pb}/type`}
              />
              <Check
                id={`${pid}-required`}
                label="Required"
                checked={p.required}
                onChange={(v) => param((y) => (y.required = v))}
                placed={placed}
                anchor={`${pb}/required`}
              />
              <Text
                id={`${pid}-description`}
                label={`Parameter ${pi + 1} description`}
                value={p.description}
                onInput={(v) => param((y) => (y.description = v))}
                placed={placed}
                anchor={`${pb}/description`}
              />
              <Text
                id={`${pid}-enum`}
                label={`Parameter ${pi + 1} allowed values (comma-separated, optional)`}
                value={p.enumText}
                onInput={(v) => param((y) => (y.enumText = v))}
                placed={placed}
                anchor={`${pb}/enum`}
              />
              <button
                type="button"
                class="danger"
                aria-label={`Remove parameter ${pi + 1}${p.name ? ` (${p.name})` : ''}`}
                onClick={() => update((m) => m.tools[ti]?.parameters.splice(pi, 1), true)}
              >
                Remove
              </button>
            </div>
          );
        })}
        <button type="button" class="secondary" onClick={() => tool((x) => x.parameters.push(newParamRow()))}>
          Add parameter to tool {ti + 1}
        </button>
      </fieldset>

      <fieldset>
        <legend>Headers of {t.name || `tool ${ti + 1}`}</legend>
        <FieldProblems placed={placed} anchor={`${base}/headers`} />
        {t.headers.map((h, hi) => {
          const anchor = `${base}/headers/${escapePointerKey(h.key)}`;
          const hid = `${id}-headers-${hi}`;
          return (
            <div class="builder-row" key={hi} role="group" aria-label={`Header ${hi + 1}`}>
              <Text
                id={`${hid}-key`}
                label={`Header ${hi + 1} name`}
                value={h.key}
                onInput={(v) => tool((x) => ((x.headers[hi] ?? { key: '', value: '' }).key = v))}
                placed={placed}
                anchor={`${anchor}#name`}
              />
              <Text
                id={`${hid}-value`}
                label={`Header ${hi + 1} value template`}
                value={h.value}
                mono
                onInput={(v) => tool((x) => ((x.headers[hi] ?? { key: '', value: '' }).value = v))}
                placed={placed}
                anchor={anchor}
              />
              <button
                type="button"
                class="danger"
                aria-label={`Remove header ${hi + 1}${h.key ? ` (${h.key})` : ''}`}
                onClick={() => update((m) => m.tools[ti]?.headers.splice(hi, 1), true)}
              >
                Remove
              </button>
            </div>
          );
        })}
        <button
          type="button"
          class="secondary"
          onClick={() => tool((x) => x.headers.push({ key: '', value: '' }))}
        >
          Add header to tool {ti + 1}
        </button>
      </fieldset>

      <div class="filters">
        <Select
          id={`${id}-body-kind`}
          label="Request body"
          value={t.bodyKind}
          options={['none', 'json', 'text']}
          onChange={(v) => tool((x) => (x.bodyKind = v))}
          placed={placed}
          anchor={`${base}/body`}
        />
        <Select
          id={`${id}-response-kind`}
          label="Response"
          value={t.responseKind}
          options={['text', 'json']}
          onChange={(v) => tool((x) => (x.responseKind = v))}
          placed={placed}
          anchor={`${base}/response`}
        />
        <Text
          id={`${id}-response-pointer`}
          label="JSON pointer into the response (optional)"
          value={t.responsePointer}
          mono
          onInput={(v) => tool((x) => (x.responsePointer = v))}
          placed={placed}
          anchor={`${base}/response/pointer`}
        />
      </div>
      {t.bodyKind !== 'none' && (
        <Text
          id={`${id}-body`}
          label={t.bodyKind === 'json' ? 'Body (JSON; strings are templates)' : 'Body template (text)'}
          value={t.bodyText}
          mono
          rows={6}
          onInput={(v) => tool((x) => (x.bodyText = v))}
          placed={placed}
          anchor={`${base}/body/${t.bodyKind === 'json' ? 'value' : 'template'}`}
        />
      )}
      <button
        type="button"
        class="danger"
        aria-label={`Remove tool ${ti + 1}${t.name ? ` (${t.name})` : ''}`}
        onClick={() => update((m) => m.tools.splice(ti, 1), true)}
      >
        Remove tool
      </button>
    </fieldset>
  );
}

/**
 * The no-code plugin builder (`builder.*`): a form for the definition (with the JSON as an advanced view
 * kept in sync), a test call of one tool against the live endpoint, and saving it as a custom plugin of the
 * organization (validated, versioned like an upload). Server problems are shown at their fields.
 */
export function Builder() {
  const saved = useLoad(() => hay.builder.list.query());
  const [model, setModel] = useState<Model>(blank);
  const [advanced, setAdvanced] = useState(false);
  /** The JSON text while it is being edited (null: the view shows the model). */
  const [draft, setDraft] = useState<string | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);
  const [testConfig, setTestConfig] = useState<Record<string, string | boolean>>({});
  const [toolIndex, setToolIndex] = useState(0);
  const [version, setVersion] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [notice, setNotice] = useState<{ pluginId: string; version: string } | null>(null);
  const [test, setTest] = useState<TestResult | null>(null);
  const [busy, setBusy] = useState(false);

  const update: Update = (change, reindex) => {
    if (reindex) setProblems([]);
    setModel((m) => {
      const next = structuredClone(m);
      change(next);
      return next;
    });
  };
  const definition = toDefinition(model);
  const local = localProblems(model);
  const placed = place([...local, ...problems], model);
  const tools = (definition.tools as { name: string; parameters: unknown }[]).map((t, i) => ({
    ...t,
    index: i,
  }));
  const tool = tools[toolIndex] ?? tools[0];

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
  const load = (def: unknown) => {
    setModel(fromDefinition(def));
    setDraft(null);
    setParseError(null);
    setProblems([]);
    setError(null);
  };
  const configuration = () =>
    Object.fromEntries(
      model.config
        .filter((c) => c.name && testConfig[c.name] !== undefined && testConfig[c.name] !== '')
        .map((c) => {
          const v = testConfig[c.name];
          return [c.name, c.type === 'number' ? Number(v) : v];
        }),
    );

  return (
    <Page title="Plugin builder">
      <p>
        Define tools that call an HTTP API. URL, header and body templates reference configuration fields as{' '}
        <code>{'{{config.<name>}}'}</code> and tool parameters as <code>{'{{params.<name>}}'}</code>. Saving
        creates (or versions) a custom plugin of this organization.
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
                    hay.builder.get.query({ pluginId: p.pluginId }).then((v) => load(v.definition), fail)
                  }
                >
                  Edit
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <div class="filters">
        <button type="button" class="secondary" onClick={() => load(EXAMPLE)}>
          Start from the example
        </button>
        <button type="button" class="secondary" onClick={() => load(blank())}>
          Start over
        </button>
        <div class="field checkbox">
          <input
            type="checkbox"
            id="builder-advanced"
            checked={advanced}
            onChange={(e) => {
              setAdvanced(e.currentTarget.checked);
              setDraft(null);
            }}
          />
          <label for="builder-advanced">Advanced: show the definition as JSON</label>
        </div>
      </div>

      <ErrorBox error={error} />
      {placed.unmatched.length > 0 && (
        <table class="problems">
          <caption>Definition problems not tied to a field</caption>
          <thead>
            <tr>
              <th scope="col">Pointer</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {placed.unmatched.map((p, i) => (
              <tr key={i}>
                <td class="mono">{p.pointer ?? ''}</td>
                <td>{p.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {advanced && (
        <div class="field">
          <label for="builder-definition">Definition (JSON)</label>
          <textarea
            id="builder-definition"
            class="mono"
            rows={22}
            spellcheck={false}
            value={draft ?? JSON.stringify(definition, null, 2)}
            onInput={(e) => {
              const text = e.currentTarget.value;
              setDraft(text);
              try {
                setModel(fromDefinition(JSON.parse(text)));
                setParseError(null);
              } catch (err) {
                setParseError(err instanceof Error ? err.message : String(err));
              }
            }}
            onBlur={() => {
              if (parseError === null) setDraft(null);
            }}
          />
          {parseError && (
            <p class="error" role="alert">
              Not valid JSON (the form shows the last valid version): {parseError}
            </p>
          )}
        </div>
      )}

      <section aria-labelledby="plugin-title">
        <h2 id="plugin-title">Plugin</h2>
        <div class="filters">
          <Text
            id="b-id"
            label="Plugin id"
            value={model.id}
            mono
            onInput={(v) => update((m) => (m.id = v))}
            placed={placed}
            anchor="/id"
            help="Lowercase letters, digits and hyphens."
          />
          <Text
            id="b-name"
            label="Plugin name"
            value={model.name}
            onInput={(v) => update((m) => (m.name = v))}
            placed={placed}
            anchor="/name"
          />
        </div>
        <Text
          id="b-description"
          label="Plugin description"
          value={model.description}
          rows={2}
          onInput={(v) => update((m) => (m.description = v))}
          placed={placed}
          anchor="/description"
        />
      </section>

      <section aria-labelledby="config-title">
        <h2 id="config-title">Configuration fields</h2>
        <p class="help">
          Values each organization enters when it enables the plugin; reference them as{' '}
          <code>{'{{config.<name>}}'}</code>. Mark API keys and tokens secret: they are stored encrypted and
          never shown again.
        </p>
        <FieldProblems placed={placed} anchor="/config" />
        {model.config.map((c, i) => {
          const b = `/config/${i}`;
          const id = `b-config-${i}`;
          const row = (change: (c: Model['config'][number]) => void) =>
            update((m) => {
              const x = m.config[i];
              if (x) change(x);
            });
          return (
            <div class="builder-row" key={i} role="group" aria-label={`Configuration field ${i + 1}`}>
              <FieldProblems placed={placed} anchor={b} />
              <Text
                id={`${id}-name`}
                label={`Configuration field ${i + 1} name`}
                value={c.name}
                onInput={(v) => row((x) => (x.name = v))}
                placed={placed}
                anchor={`${b}/name`}
              />
              <Select
                id={`${id}-type`}
                label={`Configuration field ${i + 1} type`}
                value={c.type}
                options={CONFIG_TYPES}
                onChange={(v) => row((x) => (x.type = v))}
                placed={placed}
                anchor={`${b}/type`}
              />
              <Check
                id={`${id}-required`}
                label="Required"
                checked={c.required}
                onChange={(v) => row((x) => (x.required = v))}
                placed={placed}
                anchor={`${b}/required`}
              />
              <Check
                id={`${id}-encrypted`}
                label="Secret (stored encrypted)"
                checked={c.encrypted}
                onChange={(v) => row((x) => (x.encrypted = v))}
                placed={placed}
                anchor={`${b}/encrypted`}
              />
              <Text
                id={`${id}-description`}
                label={`Configuration field ${i + 1} description`}
                value={c.description}
                onInput={(v) => row((x) => (x.description = v))}
                placed={placed}
                anchor={`${b}/description`}
              />
              <button
                type="button"
                class="danger"
                aria-label={`Remove configuration field ${i + 1}${c.name ? ` (${c.name})` : ''}`}
                onClick={() => update((m) => m.config.splice(i, 1), true)}
              >
                Remove
              </button>
            </div>
          );
        })}
        <button type="button" class="secondary" onClick={() => update((m) => m.config.push(newConfigRow()))}>
          Add configuration field
        </button>
      </section>

      <section aria-labelledby="tools-title">
        <h2 id="tools-title">Tools</h2>
        <FieldProblems placed={placed} anchor="/tools" />
        {model.tools.map((_, i) => (
          <ToolEditor key={i} model={model} index={i} update={update} placed={placed} />
        ))}
        <button type="button" class="secondary" onClick={() => update((m) => m.tools.push(newTool()))}>
          Add tool
        </button>
      </section>

      <section aria-labelledby="test-title">
        <h2 id="test-title">Test a tool against the live endpoint</h2>
        <div class="filters">
          <div class="field">
            <label for="builder-tool">Tool to test</label>
            <select
              id="builder-tool"
              value={String(tool?.index ?? 0)}
              onChange={(e) => setToolIndex(Number(e.currentTarget.value))}
            >
              {tools.map((t) => (
                <option key={t.index} value={String(t.index)}>
                  {t.name || `tool ${t.index + 1}`}
                </option>
              ))}
            </select>
          </div>
          {model.config
            .filter((c) => c.name)
            .map((c, i) =>
              c.type === 'boolean' ? (
                <div class="field checkbox" key={i}>
                  <input
                    type="checkbox"
                    id={`b-test-config-${i}`}
                    checked={testConfig[c.name] === true}
                    onChange={(e) => setTestConfig({ ...testConfig, [c.name]: e.currentTarget.checked })}
                  />
                  <label for={`b-test-config-${i}`}>Test value of {c.name}</label>
                </div>
              ) : (
                <div class="field" key={i}>
                  <label for={`b-test-config-${i}`}>Test value of {c.name}</label>
                  <input
                    id={`b-test-config-${i}`}
                    type={c.encrypted ? 'password' : c.type === 'number' ? 'number' : 'text'}
                    autocomplete="off"
                    value={typeof testConfig[c.name] === 'string' ? (testConfig[c.name] as string) : ''}
                    onInput={(e) => setTestConfig({ ...testConfig, [c.name]: e.currentTarget.value })}
                  />
                </div>
              ),
            )}
        </div>
        {tool && (
          <SchemaForm
            key={`${tool.index}-${JSON.stringify(tool.parameters)}`}
            idPrefix={`builder-test-${tool.index}`}
            schema={schemaOf(tool.parameters)}
            submitLabel={`Test ${tool.name || `tool ${tool.index + 1}`}`}
            busy={busy}
            onSubmit={(params) => {
              if (local.length > 0) {
                setError('Fix the problems shown at the fields first');
                return;
              }
              start();
              setTest(null);
              hay.builder.test
                .mutate({ definition, toolName: tool.name, params, configuration: configuration() })
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
            if (local.length > 0) {
              setError('Fix the problems shown at the fields first');
              return;
            }
            start();
            hay.builder.save
              .mutate({ definition, ...(version.trim() ? { version: version.trim() } : {}) })
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
          <button type="submit" disabled={busy || parseError !== null}>
            Save plugin
          </button>
        </form>
        {problems.length > 0 && (
          <p class="error" role="alert">
            The definition has {problems.length} problem(s); they are shown at their fields.
          </p>
        )}
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
