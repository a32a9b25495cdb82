import { useEffect, useMemo, useState } from 'preact/hooks';
import { hay, type PluginDetail } from '../api.js';
import { ErrorBox, Loading, Page, useLoad } from '../common.js';
import { PLUGIN_TYPES, PluginIcon, TypeBadge } from '../icons.js';
import { pluginState, StateBadge } from '../plugin-state.js';

export function Marketplace() {
  const list = useLoad(() => hay.plugins.list.query());
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

  const categories = useMemo(
    () => [...new Set(plugins.map((p) => p.category).filter((c): c is string => !!c))].sort(),
    [list.data],
  );
  const tags = useMemo(() => [...new Set(plugins.flatMap((p) => p.tags))].sort(), [list.data]);
  const needle = q.trim().toLowerCase();
  const shown = plugins.filter(
    (p) =>
      (type === '' || p.type.includes(type)) &&
      (category === '' || p.category === category) &&
      (tag === '' || p.tags.includes(tag)) &&
      (needle === '' ||
        [p.id, p.name, p.description ?? '', ...p.tags].some((s) => s.toLowerCase().includes(needle))),
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
    </Page>
  );
}
