import { describe, expect, it } from 'vitest';
import { MD_TAGS, parseMarkdown, safeHref, type MdNode } from '../../web/src/markdown.js';
import { csvCell, toCsv } from '../../web/src/csv.js';

function walk(nodes: MdNode[], visit: (n: Exclude<MdNode, string>) => void): void {
  for (const n of nodes)
    if (typeof n !== 'string') {
      visit(n);
      walk(n.children, visit);
    }
}

describe('dashboard Markdown renderer', () => {
  it('emits only its fixed elements and keeps raw HTML as text', () => {
    const src =
      '# T <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n- **b** *i* `c`\n1. one\n\n> q\n\n```\n<b>x</b>\n```\n---\n';
    const tree = parseMarkdown(src);
    const tags: string[] = [];
    walk(tree, (n) => {
      expect(MD_TAGS.has(n.tag)).toBe(true);
      tags.push(n.tag);
    });
    expect(new Set(tags)).toEqual(
      new Set(['h2', 'p', 'ul', 'li', 'strong', 'em', 'code', 'ol', 'blockquote', 'pre', 'hr']),
    );
    expect(JSON.stringify(tree)).toContain('<script>alert(1)</script>');
    expect(JSON.stringify(tree)).toContain('<img src=x onerror=alert(2)>');
  });

  it('links only http(s) URLs; others render as their text', () => {
    const tree = parseMarkdown(
      '[a](https://example.com/x) [b](javascript:alert(1)) [c](data:text/html,x) [d](/relative) [e](JAVASCRIPT:x) [f](http://h)',
    );
    const links: string[] = [];
    walk(tree, (n) => {
      if (n.tag === 'a') links.push(n.href ?? '');
    });
    expect(links).toEqual(['https://example.com/x', 'http://h/']);
    expect(safeHref(' javascript:alert(1)')).toBeUndefined();
    expect(safeHref('https://a b')).toBeUndefined();
  });
});

describe('audit CSV export', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell({ a: 1 })).toBe('"{""a"":1}"');
    expect(csvCell(null)).toBe('');
    expect(toCsv(['x', 'y'], [[1, 'two']])).toBe('x,y\r\n1,two\r\n');
  });
});
