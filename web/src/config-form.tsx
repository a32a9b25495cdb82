import { useState } from 'preact/hooks';

interface ConfigField {
  type?: string;
  label?: string;
  description?: string;
  required?: boolean;
  default?: string | number | boolean;
  encrypted?: boolean;
  options?: string[];
}

function isSet(v: unknown): boolean {
  return !!v && typeof v === 'object' && (v as { set?: unknown }).set === true;
}

/**
 * The configuration form from a manifest's configSchema. Secrets (encrypted fields) are write-only: the
 * page never receives their value, shows a "set" marker, and sends a secret only when one is typed.
 */
export function ConfigForm(props: {
  schema: unknown;
  configuration: Record<string, unknown>;
  submitLabel: string;
  busy: boolean;
  onSubmit: (configuration: Record<string, unknown>) => void;
}) {
  const schema = (props.schema && typeof props.schema === 'object' ? props.schema : {}) as Record<
    string,
    ConfigField
  >;
  const [values, setValues] = useState<Record<string, string | boolean>>(() => {
    const out: Record<string, string | boolean> = {};
    for (const [name, f] of Object.entries(schema)) {
      const v = props.configuration[name];
      if (f.encrypted) out[name] = '';
      else if (f.type === 'boolean') out[name] = typeof v === 'boolean' ? v : f.default === true;
      else out[name] = v !== undefined && v !== null && typeof v !== 'object' ? String(v) : '';
    }
    return out;
  });
  const fields = Object.entries(schema);
  return (
    <form
      class="config-form"
      onSubmit={(e) => {
        e.preventDefault();
        const out: Record<string, unknown> = {};
        for (const [name, f] of fields) {
          const v = values[name];
          if (f.type === 'boolean') out[name] = v === true;
          else if (typeof v === 'string' && v !== '') out[name] = f.type === 'number' ? Number(v) : v;
        }
        props.onSubmit(out);
      }}
    >
      {fields.length === 0 && <p class="muted">This plugin has no settings.</p>}
      {fields.map(([name, f]) => {
        const id = `cfg-${name}`;
        const secretSet = f.encrypted && isSet(props.configuration[name]);
        const label = (
          <label for={id}>
            {f.label ?? name}
            {f.required && <span class="required"> (required)</span>}
            {f.encrypted && (
              <span class={`secret-marker ${secretSet ? 'is-set' : 'not-set'}`}>
                {secretSet ? ' secret: set' : ' secret: not set'}
              </span>
            )}
          </label>
        );
        const help = f.description ? (
          <p class="help" id={`${id}-help`}>
            {f.description}
          </p>
        ) : null;
        const describedBy = f.description ? `${id}-help` : undefined;
        if (f.type === 'boolean')
          return (
            <div class="field checkbox" key={name}>
              <input
                id={id}
                type="checkbox"
                checked={values[name] === true}
                aria-describedby={describedBy}
                onChange={(e) => setValues({ ...values, [name]: e.currentTarget.checked })}
              />
              {label}
              {help}
            </div>
          );
        if (f.type === 'select')
          return (
            <div class="field" key={name}>
              {label}
              <select
                id={id}
                value={String(values[name] ?? '')}
                required={f.required && f.default === undefined}
                aria-describedby={describedBy}
                onChange={(e) => setValues({ ...values, [name]: e.currentTarget.value })}
              >
                <option value="">
                  {f.default !== undefined ? `(default: ${String(f.default)})` : '(none)'}
                </option>
                {(f.options ?? []).map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
              {help}
            </div>
          );
        return (
          <div class="field" key={name}>
            {label}
            <input
              id={id}
              type={
                f.encrypted ? 'password' : f.type === 'number' ? 'number' : f.type === 'url' ? 'url' : 'text'
              }
              autocomplete={f.encrypted ? 'new-password' : 'off'}
              value={String(values[name] ?? '')}
              placeholder={
                f.encrypted
                  ? secretSet
                    ? 'set (leave empty to keep)'
                    : 'not set'
                  : f.default !== undefined
                    ? `default: ${String(f.default)}`
                    : ''
              }
              required={!!f.required && f.default === undefined && !secretSet && !f.encrypted}
              aria-describedby={describedBy}
              onInput={(e) => setValues({ ...values, [name]: e.currentTarget.value })}
            />
            {help}
          </div>
        );
      })}
      <button type="submit" disabled={props.busy}>
        {props.submitLabel}
      </button>
    </form>
  );
}
