import { h, type ComponentChild } from 'preact';
import { MD_TAGS, parseMarkdown, type MdNode } from './markdown.js';

function render(node: MdNode, key: number): ComponentChild {
  if (typeof node === 'string') return node;
  if (!MD_TAGS.has(node.tag)) return null;
  const children = node.children.map(render);
  if (node.tag === 'a')
    return h('a', { key, href: node.href, rel: 'noopener noreferrer nofollow', target: '_blank' }, children);
  return h(node.tag, { key }, children);
}

/** A README (untrusted Markdown) as elements of the fixed set in markdown.ts; no HTML is parsed. */
export function Markdown({ source }: { source: string }) {
  return <div class="markdown">{parseMarkdown(source).map(render)}</div>;
}
