import { useEffect, useMemo, useState } from 'preact/hooks';
import { errorMessage, hay, type CatalogEntry, type PluginDetail, type SessionInfo } from '../api.js';
import { ErrorBox, Loading, Page, useLoad } from '../common.js';
import { PLUGIN_TYPES, PluginIcon, TypeBadge } from '../icons.js';
import { pluginState, StateBadge } from '../plugin-state.js';
import { navigate } from '../router.js';

export function Marketplace({ session }: { session: SessionInfo }) {
  const list = useLoad(() => hay.plugins.list.query());
  // catalog entries this org has not installed yet (installed ones are in plugins.list)
  const catalog = useLoad(() => hay.plugins.catalog.query({ installed: false, limit: 100 }));
  const [details, setDetails] = useState<Record<string, PluginDetail>>({});
  const [q, setQ] = useState('');
  const [type, setType] = useState('');
  const [category, setCategory] = useState('');
  const [tag, setTag] = useState('');
  const plugins = list.data ?? [];

  // enabled plugins with required fields: their configuration decides "needs configuration"
  useEffect(() => {
    for (const p of plugins)
      if (p.enabled && p.requiredConfig.length > 0 && !details[p.id])
        hay.plugins.get
          .query({ pluginId: p.id })
          .then((d) => setDetails((all) => ({ ...all, [p.id]: d })))
          .catch(() => undefined);
  }, [list.data]);

  const entries = catalog.data?.entries ?? [];
  const categories = useMemo(
    () =>
      [
        ...new Set(
          [...plugins.map((p) => p.category), ...entries.map((e) => e.category)].filter(
            (c): c is string => !!c,
          ),
        ),
      ].sort(),
    [list.data, catalog.data],
  );
  const tags = useMemo(
    () => [...new Set([...plugins.flatMap((p) => p.tags), ...entries.flatMap((e) => e.tags)])].sort(),
    [list.data, catalog.data],
  );
  const needle = q.trim().toLowerCase();
  const shown = plugins.filter(
    (p) =>
      (type === '' || p.type.includes(type)) &&
      (category === '' || p.category === category) &&
      (tag === '' || p.tags.includes(tag)) &&
      (needle === '' ||
        [p.id, p.name, p.description ?? '', ...p.tags].some((s) => s.toLowerCase().includes(needle))),
  );
  // catalog entries have no plugin type yet (their manifest is generated at install), so a type filter hides them
  const shownEntries = entries.filter(
    (e) =>
      type === '' &&
      (category === '' || e.category === category) &&
      (tag === '' || e.tags.includes(tag)) &&
      (needle === '' ||
        [e.name, e.title, e.description, ...e.tags].some((s) => s.toLowerCase().includes(needle))),
  );

  return (
    <Page title="Marketplace">
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="mp-search">Search</label>
          <input id="mp-search" type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="mp-type">Type</label>
          <select id="mp-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
            <option value="">All types</option>
            {PLUGIN_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="mp-category">Category</label>
          <select id="mp-category" value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            <option value="">All categories</option>
            {categories.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="mp-tag">Tag</label>
          <select id="mp-tag" value={tag} onChange={(e) => setTag(e.currentTarget.value)}>
            <option value="">All tags</option>
            {tags.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
      </form>
      <ErrorBox error={list.error} />
      <Loading when={list.loading && !list.data} />
      <p class="muted" aria-live="polite">
        {shown.length} of {plugins.length} plugins
      </p>
      <ul class="cards" aria-label="Plugins">
        {shown.map((p) => (
          <li class="card plugin-card" key={p.id} data-plugin-id={p.id}>
            <div class="card-head">
              <PluginIcon icon={p.icon} type={p.type[0]} />
              <h2>
                <a href={`/plugins/${encodeURIComponent(p.id)}`}>{p.name}</a>
              </h2>
              <StateBadge state={pluginState(p, details[p.id])} />
            </div>
            <p class="muted mono">
              {p.id} · v{p.version} · {p.sourceType}
            </p>
            <p>{p.description ?? ''}</p>
            <div class="badges">
              {p.type.map((t) => (
                <TypeBadge key={t} type={t} />
              ))}
              {p.category && <span class="badge category">{p.category}</span>}
              {p.tags.map((t) => (
                <span class="badge tag" key={t}>
                  #{t}
                </span>
              ))}
            </div>
          </li>
        ))}
      </ul>
      <h2>Catalog</h2>
      <ErrorBox error={catalog.error} />
      <p class="muted" aria-live="polite">
        {shownEntries.length} of {entries.length} catalog entries not installed
        {session.role === 'admin' ? '' : ' (an admin key installs them)'}
      </p>
      <ul class="cards" aria-label="Catalog entries">
        {shownEntries.map((e) => (
          <CatalogCard key={e.name} entry={e} canInstall={session.role === 'admin'} />
        ))}
      </ul>
    </Page>
  );
}

/** One installable catalog entry; installing goes to the new plugin's page (configure and enable there). */
function CatalogCard({ entry, canInstall }: { entry: CatalogEntry; canInstall: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const install = (type: 'local' | 'remote') => {
    setBusy(true);
    setError(null);
    hay.plugins.installFromCatalog.mutate({ name: entry.name, type }).then(
      (r) => navigate(`/plugins/${encodeURIComponent(r.pluginId)}`),
      (err: unknown) => {
        setError(errorMessage(err));
        setBusy(false);
      },
    );
  };
  return (
    <li class="card catalog-card" data-catalog-name={entry.name}>
      <div class="card-head">
        <PluginIcon icon={entry.icon} type={undefined} />
        <h3>{entry.title}</h3>
        <span class="state state-catalog">catalog</span>
      </div>
      <p class="muted mono">
        {entry.name} · v{entry.version} · {entry.source}
      </p>
      <p>{entry.description}</p>
      <div class="badges">
        {entry.types.map((t) => (
          <span class="badge" key={t}>
            {t}
          </span>
        ))}
        {entry.category && <span class="badge category">{entry.category}</span>}
        {entry.tags.map((t) => (
          <span class="badge tag" key={t}>
            #{t}
          </span>
        ))}
      </div>
      {entry.configFields.length > 0 && (
        <p class="muted">Needs: {entry.configFields.map((f) => f.label).join(', ')}</p>
      )}
      {canInstall && (
        <div class="catalog-actions">
          {entry.types.map((t) => (
            <button
              key={t}
              type="button"
              disabled={busy}
              aria-label={`Install ${entry.title} (${t})`}
              onClick={() => install(t)}
            >
              Install ({t})
            </button>
          ))}
        </div>
      )}
      <ErrorBox error={error} />
    </li>
  );
}
