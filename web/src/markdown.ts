/**
 * A small Markdown subset parsed to a tree of a fixed set of elements; never to HTML text. Raw HTML in the
 * source stays literal text, links keep only http(s) URLs (anything else renders as its text), and there
 * are no images, attributes or styles. The page renders the tree as Preact elements, so every string is
 * a text node.
 */
export type MdTag =
  | 'p'
  | 'h2'
  | 'h3'
  | 'h4'
  | 'ul'
  | 'ol'
  | 'li'
  | 'pre'
  | 'code'
  | 'em'
  | 'strong'
  | 'a'
  | 'blockquote'
  | 'hr';

export type MdNode = string | { tag: MdTag; href?: string; children: MdNode[] };

/** The tags parse() may emit. */
export const MD_TAGS: ReadonlySet<MdTag> = new Set<MdTag>([
  'p',
  'h2',
  'h3',
  'h4',
  'ul',
  'ol',
  'li',
  'pre',
  'code',
  'em',
  'strong',
  'a',
  'blockquote',
  'hr',
]);

/** An http(s) URL as given, or undefined for every other scheme (javascript:, data:, relative ...). */
export function safeHref(url: string): string | undefined {
  const trimmed = url.trim();
  if (!/^https?:\/\//i.test(trimmed)) return undefined;
  try {
    const u = new URL(trimmed);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** Most source characters parsed; the rest is cut (a README is documentation, not a book). */
const MAX_SOURCE_CHARS = 200_000;

export function parseMarkdown(source: string): MdNode[] {
  const lines = source.slice(0, MAX_SOURCE_CHARS).replace(/\r\n?/g, '\n').split('\n');
  const out: MdNode[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (line.trim() === '') {
      i++;
      continue;
    }
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      const code: string[] = [];
      i++;
      while (i < lines.length && !(lines[i] ?? '').trim().startsWith(fence[1] ?? '```'))
        code.push(lines[i++] ?? '');
      i++;
      out.push({ tag: 'pre', children: [{ tag: 'code', children: [code.join('\n')] }] });
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = Math.min(4, Math.max(2, (heading[1] ?? '#').length + 1));
      out.push({ tag: `h${level}` as MdTag, children: inline(heading[2] ?? '') });
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push({ tag: 'hr', children: [] });
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quote: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i] ?? ''))
        quote.push((lines[i++] ?? '').replace(/^\s*>\s?/, ''));
      out.push({ tag: 'blockquote', children: parseMarkdown(quote.join('\n')) });
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/;
    if (bullet.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const items: MdNode[] = [];
      while (i < lines.length && bullet.test(lines[i] ?? '') && /^\s*\d/.test(lines[i] ?? '') === ordered) {
        items.push({ tag: 'li', children: inline((lines[i++] ?? '').replace(bullet, '')) });
      }
      out.push({ tag: ordered ? 'ol' : 'ul', children: items });
      continue;
    }
    const para: string[] = [];
    while (
      i < lines.length &&
      (lines[i] ?? '').trim() !== '' &&
      !/^(#{1,6}\s|\s*(```|~~~)|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(lines[i] ?? '')
    )
      para.push((lines[i++] ?? '').trim());
    out.push({ tag: 'p', children: inline(para.join(' ')) });
  }
  return out;
}

/** Inline spans: `code`, **strong**, *em* / _em_, [text](http(s) url). Everything else is text. */
export function inline(text: string): MdNode[] {
  const out: MdNode[] = [];
  const pattern = /`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s][^*]*?)\*|\b_([^_]+)_\b|\[([^\]]*)\]\(([^)\s]*)\)/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push({ tag: 'code', children: [m[1]] });
    else if (m[2] !== undefined) out.push({ tag: 'strong', children: inline(m[2]) });
    else if (m[3] !== undefined) out.push({ tag: 'em', children: inline(m[3]) });
    else if (m[4] !== undefined) out.push({ tag: 'em', children: inline(m[4]) });
    else {
      const href = safeHref(m[6] ?? '');
      const label = inline(m[5] ?? '');
      if (href) out.push({ tag: 'a', href, children: label });
      else out.push(...label);
    }
    last = pattern.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
