import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HayError, ManifestError } from '../../src/errors.js';
import { ToolArgumentValidator } from '../../src/invocation/tool-arguments.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof HayError ? err.code : String(err);
  }
}

describe('plugin schemas run on a linear-time regex engine (issue 9)', () => {
  it('^(a+)+$ against 40 characters is an ordinary validation error, not a stall', () => {
    const v = new ToolArgumentValidator();
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } };
    // on a backtracking engine this one call runs for hours (0.44 s at 26 characters, doubling per char)
    expect(codeOf(() => v.validate('v1', 'match', schema, { s: `${'a'.repeat(40)}!` }))).toBe(
      'ARGUMENTS_INVALID',
    );
    expect(codeOf(() => v.validate('v1', 'match', schema, { s: 'a'.repeat(40) }))).toBeUndefined();
  });

  it('patternProperties use the same engine, and distinct patterns are not confused', () => {
    const v = new ToolArgumentValidator();
    const schema = {
      type: 'object',
      patternProperties: { '^(x+)+$': { type: 'number' }, '^y$': { type: 'string' } },
    };
    expect(codeOf(() => v.validate('v', 't', schema, { [`${'x'.repeat(40)}`]: 1, y: 'ok' }))).toBeUndefined();
    expect(codeOf(() => v.validate('v', 't', schema, { xxxx: 'not a number' }))).toBe('ARGUMENTS_INVALID');
    expect(codeOf(() => v.validate('v', 't', schema, { y: 2 }))).toBe('ARGUMENTS_INVALID');
  });

  it('unsupported syntax (lookahead, backreference) refuses the call with a clear error', () => {
    const v = new ToolArgumentValidator();
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '^(?=a)a$' } } };
    let err: unknown;
    try {
      v.validate('v', 'look', schema, { s: 'a' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HayError);
    expect((err as HayError).code).toBe('PLUGIN_NOT_READY');
    expect((err as HayError).message).toMatch(
      /^tool look cannot be called: its input schema uses a pattern "\^\(\?=a\)a\$" is not supported by the host's linear-time regex engine/,
    );
  });

  it('a manifest tool input_schema with unsupported syntax is invalid at registration', () => {
    const validator = new ManifestValidator(manifestSchemaPath(`${root}plugins`));
    const manifest = {
      id: 'looky',
      name: 'Looky',
      version: '1.0.0',
      type: ['mcp-connector'],
      capabilities: {
        mcp: {
          connection: { type: 'local' },
          transport: 'stdio',
          startCommand: 'node s.mjs',
          tools: [
            { name: 'ok', input_schema: { type: 'object', properties: { s: { pattern: '^[a-z]+$' } } } },
            { name: 'bad', input_schema: { type: 'object', properties: { s: { pattern: '(a)\\1' } } } },
          ],
        },
      },
    };
    let err: unknown;
    try {
      validator.validate(manifest, 'manifest.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).problems).toEqual([
      expect.stringMatching(
        /^manifest\.json: \/capabilities\/mcp\/tools\/1\/input_schema uses a pattern "\(a\)\\\\1" is not supported by the host's linear-time regex engine/,
      ),
    ]);
  });
});
