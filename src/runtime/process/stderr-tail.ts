/** Lines kept, and the longest line kept, of a plugin process's stderr. */
const DEFAULT_MAX_LINES = 8;
const DEFAULT_MAX_LINE_CHARS = 300;
/** Environment values shorter than this are not redacted (too likely to match ordinary words). */
const MIN_SECRET_CHARS = 6;
/** Names whose values are fine to show (and common substrings of messages). */
const SHOWN_ENV = new Set(['PATH', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV', 'HAY_ORG_ID', 'HAY_PLUGIN_ID']);

export interface StderrTailOptions {
  /** The plugin folder (the process's cwd): paths inside it are shown relative to it. */
  pluginDir: string;
  /** The process's environment: its values (config, secrets, tokens, host paths) are redacted. */
  env: Readonly<Record<string, string>>;
  maxLines?: number;
  maxLineChars?: number;
}

/**
 * The last lines a plugin process wrote to stderr, kept for error messages the caller sees (the plugin's
 * own organization only: one tail per process). Contract of `lines()`: no stack frames (`at ...`), no
 * environment values (secrets, tokens, data folder), no absolute path outside the plugin folder (shown
 * as `<path>`), paths inside it relative (`./mcp/index.js`), control characters removed, each line at
 * most maxLineChars, at most maxLines lines.
 */
export class StderrTail {
  private readonly kept: string[] = [];
  private readonly maxLines: number;
  private readonly maxLineChars: number;
  private readonly pluginDir: string;
  private readonly secrets: string[];

  constructor(options: StderrTailOptions) {
    this.maxLines = options.maxLines ?? DEFAULT_MAX_LINES;
    this.maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
    this.pluginDir = options.pluginDir.replace(/\/+$/, '');
    this.secrets = Object.entries(options.env)
      .filter(([name, value]) => !SHOWN_ENV.has(name) && value.length >= MIN_SECRET_CHARS)
      .map(([, value]) => value)
      .filter((value) => value !== this.pluginDir)
      .sort((a, b) => b.length - a.length);
  }

  push(line: string): void {
    const clean = this.sanitize(line);
    if (clean === undefined) return;
    if (/^\^+$/.test(clean)) {
      // Node's caret line under the source excerpt of an uncaught error: both are noise to the caller.
      this.kept.pop();
      return;
    }
    this.kept.push(clean);
    if (this.kept.length > this.maxLines) this.kept.shift();
  }

  lines(): string[] {
    return [...this.kept];
  }

  private sanitize(raw: string): string | undefined {
    // eslint-disable-next-line no-control-regex
    let line = raw.replace(/\u001b\[[0-9;]*[A-Za-z]|[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trim();
    if (line === '' || /^at\s/.test(line) || /^Node\.js v\d/.test(line) || /^node:internal\//.test(line))
      return undefined;
    if (/^[{}[\]()]+,?$/.test(line)) return undefined;
    if (line.length > 4 * this.maxLineChars) line = line.slice(0, 4 * this.maxLineChars);
    for (const secret of this.secrets) line = line.split(secret).join('[redacted]');
    line = line.replace(/(?<=^|[\s'"`(=])(file:\/\/)?(\/[^\s'"`():,]*)/g, (_whole, _scheme, p: string) => {
      if (p === this.pluginDir) return '.';
      if (p.startsWith(`${this.pluginDir}/`)) return `./${p.slice(this.pluginDir.length + 1)}`;
      return '<path>';
    });
    return line.length > this.maxLineChars ? `${line.slice(0, this.maxLineChars)}…` : line;
  }
}
