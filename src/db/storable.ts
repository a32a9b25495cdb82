/**
 * PostgreSQL's text and jsonb refuse NUL, and jsonb refuses an unpaired UTF-16 surrogate escape (a string cut
 * in the middle of a pair). These make tenant-given strings storable; each such character becomes U+FFFD.
 */

/** `text` as a text column accepts it (the driver encodes unpaired surrogates as U+FFFD itself). */
export function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text;
}

/** JSON.stringify writes NUL and unpaired surrogates as `\u` escapes; these are the ones not preceded by an escaping backslash. */
const UNSTORABLE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

/** JSON text (as JSON.stringify writes it) that PostgreSQL's jsonb accepts: same value, strings fixed. */
export function storableJsonText(json: string): string {
  UNSTORABLE_ESCAPE.lastIndex = 0;
  return UNSTORABLE_ESCAPE.test(json) ? json.replace(UNSTORABLE_ESCAPE, '$1\ufffd') : json;
}

/** `value` as jsonb accepts it: itself when already storable, else a copy with those strings fixed. */
export function storableJson<T>(value: T): T {
  const text = JSON.stringify(value) as string | undefined;
  if (text === undefined) return value;
  const fixed = storableJsonText(text);
  return fixed === text ? value : (JSON.parse(fixed) as T);
}

/** SQLSTATEs of the database refusing text: NUL in text (22021), NUL or an unpaired surrogate in jsonb (22P05). */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

/** Whether `err` (a query error, or one it wraps as `cause`) is the database refusing a string it was given. */
export function isUnstorableTextError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNSTORABLE_TEXT.has(code)) return true;
  }
  return false;
}
