import { useState } from 'preact/hooks';
import { errorMessage, hay, type Outputs, type SessionInfo } from '../api.js';
import { ErrorBox, Page } from '../common.js';
import { toCsv } from '../csv.js';
import { useEffect } from 'preact/hooks';

type Entry = Outputs['audit']['list']['entries'][number];

const ACTIONS = [
  'tool.invoke',
  'plugin.enable',
  'plugin.disable',
  'plugin.configure',
  'plugin.upload',
  'plugin.install',
  'plugin.build',
  'plugin.uninstall',
  'plugin.pin',
  'plugin.unpin',
  'instance.stop',
  'instance.restart',
  'session.create',
  'session.delete',
  'auth.failed',
  'permission.denied',
  'rate.limited',
  'apikey.create',
  'apikey.revoke',
];

interface Filters {
  action: string;
  pluginId: string;
  outcome: '' | 'ok' | 'error' | 'denied';
  since: string;
  until: string;
}

const PAGE_SIZE = 50;

export function Audit({ session }: { session: SessionInfo }) {
  const [f, setF] = useState<Filters>({ action: '', pluginId: '', outcome: '', since: '', until: '' });
  const [entries, setEntries] = useState<Entry[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = (cursor: number | undefined, applied: Filters) => {
    setBusy(true);
    setError(null);
    const input = {
      limit: PAGE_SIZE,
      ...(applied.action ? { action: applied.action } : {}),
      ...(applied.pluginId ? { pluginId: applied.pluginId } : {}),
      ...(applied.outcome ? { outcome: applied.outcome } : {}),
      ...(applied.since ? { since: new Date(applied.since).toISOString() } : {}),
      ...(applied.until ? { until: new Date(applied.until).toISOString() } : {}),
      ...(cursor ? { cursor } : {}),
    };
    (session.kind === 'admin' ? hay.admin.auditLog.query(input) : hay.audit.list.query(input))
      .then(
        (page) => {
          setEntries((old) => (cursor ? [...old, ...page.entries] : page.entries));
          setNext(page.nextCursor);
        },
        (err: unknown) => setError(errorMessage(err)),
      )
      .finally(() => setBusy(false));
  };
  useEffect(() => load(undefined, f), []);

  const exportCsv = () => {
    const csv = toCsv(
      ['id', 'at', 'organizationId', 'actor', 'action', 'pluginId', 'outcome', 'details'],
      entries.map((e) => [e.id, e.at, e.organizationId, e.actor, e.action, e.pluginId, e.outcome, e.details]),
    );
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'hay-audit.csv';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const input = (key: keyof Filters, label: string, type: string) => (
    <div class="field">
      <label for={`au-${key}`}>{label}</label>
      <input
        id={`au-${key}`}
        type={type}
        value={f[key]}
        onInput={(e) => setF({ ...f, [key]: e.currentTarget.value })}
      />
    </div>
  );
  return (
    <Page
      title="Audit log"
      actions={
        <button type="button" class="secondary" disabled={entries.length === 0} onClick={exportCsv}>
          Export CSV
        </button>
      }
    >
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          load(undefined, f);
        }}
      >
        <div class="field">
          <label for="au-action">Action</label>
          <select
            id="au-action"
            value={f.action}
            onChange={(e) => setF({ ...f, action: e.currentTarget.value })}
          >
            <option value="">All actions</option>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </div>
        {input('pluginId', 'Plugin id', 'text')}
        <div class="field">
          <label for="au-outcome">Outcome</label>
          <select
            id="au-outcome"
            value={f.outcome}
            onChange={(e) => setF({ ...f, outcome: e.currentTarget.value as Filters['outcome'] })}
          >
            <option value="">All outcomes</option>
            <option value="ok">ok</option>
            <option value="error">error</option>
            <option value="denied">denied</option>
          </select>
        </div>
        {input('since', 'From', 'datetime-local')}
        {input('until', 'To', 'datetime-local')}
        <button type="submit" disabled={busy}>
          Apply filters
        </button>
      </form>
      <ErrorBox error={error} />
      <table class="audit">
        <caption class="sr-only">Audit entries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Plugin</th>
            <th scope="col">Outcome</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id} data-action={e.action}>
              <td>{new Date(e.at).toLocaleString()}</td>
              <td class="mono">{e.actor}</td>
              <td class="mono">{e.action}</td>
              <td>{e.pluginId ?? ''}</td>
              <td>
                <span class={`outcome outcome-${e.outcome}`}>{e.outcome}</span>
              </td>
              <td>
                <code class="details">{JSON.stringify(e.details)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {entries.length === 0 && !busy && <p class="muted">No entries match.</p>}
      {next !== null && (
        <button type="button" class="secondary" disabled={busy} onClick={() => load(next, f)}>
          Older entries
        </button>
      )}
    </Page>
  );
}
