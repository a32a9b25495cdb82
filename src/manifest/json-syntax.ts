/**
 * Locates the first JSON syntax error in a text. V8's JSON.parse messages only sometimes carry a position,
 * so when parsing fails this scanner names the exact offset and what was expected there.
 */
export interface JsonSyntaxProblem {
  offset: number;
  line: number;
  column: number;
  reason: string;
}

class Stop {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

/** Returns undefined when `text` is valid JSON (RFC 8259); otherwise the first problem, 1-based line/column. */
export function findJsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  let i = 0;

  const describe = (at: number): string =>
    at >= text.length ? 'end of input' : `${JSON.stringify(text[at])}`;
  const fail = (reason: string): never => {
    throw new Stop(i, reason);
  };
  const skipWs = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const expectChar = (ch: string, what: string): void => {
    if (text[i] !== ch) fail(`expected ${what} but found ${describe(i)}`);
    i++;
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail(`unexpected ${describe(i)}`);
  };
  const str = (): void => {
    expectChar('"', 'a double-quoted string');
    for (;;) {
      const ch = text[i];
      if (ch === undefined) fail('unterminated string');
      else if (ch === '"') {
        i++;
        return;
      } else if (ch === '\\') {
        const esc = text[i + 1];
        if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i += 2;
        else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('invalid escape sequence in string');
      } else if (ch < ' ') fail('control character (e.g. a raw newline) inside a string');
      else i++;
    }
  };
  const num = (): void => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail(`invalid number starting with ${describe(i)}`);
    else i += m[0].length;
  };
  const value = (depth: number): void => {
    if (depth > 1000) fail('nesting too deep');
    skipWs();
    const ch = text[i];
    if (ch === '{') {
      i++;
      skipWs();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        skipWs();
        if (text[i] !== '"') fail(`expected a double-quoted property name but found ${describe(i)}`);
        str();
        skipWs();
        expectChar(':', '":"');
        value(depth + 1);
        skipWs();
        if (text[i] === ',') {
          i++;
          skipWs();
          if (text[i] === '}') fail('trailing comma before "}"');
          continue;
        }
        expectChar('}', '"," or "}"');
        return;
      }
    } else if (ch === '[') {
      i++;
      skipWs();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        skipWs();
        if (text[i] === ',') {
          i++;
          skipWs();
          if (text[i] === ']') fail('trailing comma before "]"');
          continue;
        }
        expectChar(']', '"," or "]"');
        return;
      }
    } else if (ch === '"') str();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) num();
    else fail(ch === undefined ? 'unexpected end of input' : `unexpected ${describe(i)}`);
  };

  try {
    value(0);
    skipWs();
    if (i < text.length) fail(`unexpected ${describe(i)} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const before = text.slice(0, err.offset);
    const line = before.split('\n').length;
    const column = err.offset - before.lastIndexOf('\n');
    return { offset: err.offset, line, column, reason: err.reason };
  }
}
