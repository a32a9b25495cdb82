import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import type { ConfigField } from '../../src/manifest/types.js';
import {
  applyConfigurationUpdate,
  changedFields,
  maskConfiguration,
  mergeConfigurationUpdate,
  openConfiguration,
  redactSecrets,
  sealConfiguration,
  secretValues,
  validateConfiguration,
} from '../../src/security/config-secrets.js';
import { KeyRing } from '../../src/security/key-ring.js';
import { SecretBox, isEncrypted } from '../../src/security/secret-box.js';

const schema: Record<string, ConfigField> = {
  apiKey: { type: 'string', required: true, encrypted: true },
  endpoint: { type: 'url', default: 'https://api.example.com' },
  region: { type: 'select', options: ['eu', 'us'], required: true },
  retries: { type: 'number', default: 3 },
  verbose: { type: 'boolean' },
  pin: { type: 'number', encrypted: true },
};
const box = new SecretBox(KeyRing.fromKeys([randomBytes(32)]));

function validationMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe('CONFIGURATION_INVALID');
    return (err as ValidationError).message;
  }
  throw new Error('expected a throw');
}

describe('validateConfiguration', () => {
  it('applies defaults and keeps typed values', () => {
    expect(validateConfiguration(schema, { apiKey: 'k', region: 'eu', verbose: false })).toEqual({
      apiKey: 'k',
      endpoint: 'https://api.example.com',
      region: 'eu',
      retries: 3,
      verbose: false,
    });
  });

  it('reports a missing required field by name', () => {
    expect(validationMessage(() => validateConfiguration(schema, { region: 'eu' }))).toBe(
      'configuration.apiKey is required',
    );
    expect(validationMessage(() => validateConfiguration(schema, { apiKey: '', region: 'eu' }))).toBe(
      'configuration.apiKey is required',
    );
    expect(validationMessage(() => validateConfiguration(schema, undefined))).toBe(
      'configuration.apiKey is required; configuration.region is required',
    );
  });

  it('rejects wrong types, bad urls, unknown options and unknown fields, never echoing values', () => {
    const msg = validationMessage(() =>
      validateConfiguration(schema, {
        apiKey: 12345,
        endpoint: 'ftp://files.example.com',
        region: 'mars',
        retries: '3',
        verbose: 'yes',
        pin: Number.NaN,
        extra: 'sneaky-value',
      }),
    );
    expect(msg.split('; ')).toEqual([
      'configuration.extra is not a field of this plugin (fields: apiKey, endpoint, region, retries, verbose, pin)',
      'configuration.apiKey must be a string',
      'configuration.endpoint must be an http(s) URL (got ftp)',
      'configuration.region must be one of: eu, us',
      'configuration.retries must be a finite number',
      'configuration.verbose must be true or false',
      'configuration.pin must be a finite number',
    ]);
    expect(msg).not.toContain('sneaky-value');
    expect(
      validationMessage(() => validateConfiguration(schema, { apiKey: 'k', region: 'eu', endpoint: 'nope' })),
    ).toBe('configuration.endpoint must be an absolute http(s) URL');
    expect(validationMessage(() => validateConfiguration(schema, ['a']))).toBe(
      'configuration must be an object',
    );
    expect(validationMessage(() => validateConfiguration(undefined, { a: 1 }))).toBe(
      'configuration.a is not a field of this plugin (it takes no configuration)',
    );
  });
});

describe('configuration size limit', () => {
  it('refuses input over maxBytes before looking at fields', () => {
    const input = { apiKey: 'x'.repeat(100), region: 'eu' };
    const bytes = Buffer.byteLength(JSON.stringify(input));
    expect(validationMessage(() => validateConfiguration(schema, input, { maxBytes: 50 }))).toBe(
      `configuration is ${bytes} bytes; the limit is 50 bytes (HAY_MAX_CONFIGURATION_BYTES)`,
    );
    expect(validateConfiguration(schema, input, { maxBytes: bytes }).apiKey).toHaveLength(100);
  });
});

describe('seal / open / mask', () => {
  const values = validateConfiguration(schema, { apiKey: 'sk-live-abc', region: 'us', pin: 1234 });

  it('encrypts only encrypted fields and opens them back with their types', () => {
    const stored = sealConfiguration(schema, values, box);
    expect(isEncrypted(stored.apiKey)).toBe(true);
    expect(isEncrypted(stored.pin)).toBe(true);
    expect(stored.region).toBe('us');
    expect(JSON.stringify(stored)).not.toContain('sk-live-abc');
    expect(openConfiguration(schema, stored, box)).toEqual(values);
  });

  it('opens legacy plaintext in a secret field and drops fields no longer in the schema', () => {
    expect(openConfiguration(schema, { apiKey: 'legacy', region: 'eu', removed: 'x' }, box)).toEqual({
      apiKey: 'legacy',
      region: 'eu',
    });
    expect(openConfiguration(schema, null, box)).toEqual({});
  });

  it('fails loudly when a stored secret cannot be decrypted', () => {
    const other = new SecretBox(KeyRing.fromKeys([randomBytes(32)]));
    const stored = sealConfiguration(schema, values, other);
    expect(() => openConfiguration(schema, stored, box)).toThrow(/SECRET|encrypted with key/);
  });

  it('masks secrets as { set } and leaks nothing else', () => {
    const stored = { ...sealConfiguration(schema, values, box), unknown: 'x', verbose: box.encrypt('true') };
    const masked = maskConfiguration(schema, stored);
    expect(masked).toEqual({
      apiKey: { set: true },
      endpoint: 'https://api.example.com',
      region: 'us',
      retries: 3,
      verbose: { set: true },
      pin: { set: true },
    });
    expect(JSON.stringify(masked)).not.toContain('enc:');
    expect(maskConfiguration(schema, { region: 'eu' })).toEqual({
      apiKey: { set: false },
      region: 'eu',
      pin: { set: false },
    });
  });
});

describe('configure updates', () => {
  const before = sealConfiguration(
    schema,
    validateConfiguration(schema, { apiKey: 'old-secret', region: 'eu', pin: 42 }),
    box,
  );

  it('keeps an omitted or mask-echoed secret, replaces non-secret fields', () => {
    const { stored, values, changed } = applyConfigurationUpdate(
      schema,
      { region: 'us', pin: { set: true } },
      before,
      box,
    );
    expect(values).toEqual({
      apiKey: 'old-secret',
      endpoint: 'https://api.example.com',
      region: 'us',
      retries: 3,
      pin: 42,
    });
    expect(openConfiguration(schema, stored, box).apiKey).toBe('old-secret');
    expect(changed).toEqual(['region']);
  });

  it('replaces a given secret and clears one set to null', () => {
    const { values, changed } = applyConfigurationUpdate(
      schema,
      { apiKey: 'new-secret', region: 'eu', pin: null },
      before,
      box,
    );
    expect(values.apiKey).toBe('new-secret');
    expect(values.pin).toBeUndefined();
    expect(changed).toEqual(['apiKey', 'pin']);
  });

  it('still requires a secret that was never set', () => {
    expect(validationMessage(() => applyConfigurationUpdate(schema, { region: 'eu' }, undefined, box))).toBe(
      'configuration.apiKey is required',
    );
    expect(mergeConfigurationUpdate(schema, { apiKey: { set: true } }, undefined)).toEqual({});
  });

  it('changedFields reports names only', () => {
    expect(changedFields(schema, { apiKey: 'a', x: 1 }, { apiKey: 'b', region: 'eu' })).toEqual([
      'apiKey',
      'region',
      'x',
    ]);
    expect(changedFields(schema, { retries: 3 }, { retries: 3 })).toEqual([]);
  });
});

describe('redactSecrets', () => {
  it('scrubs plain, URL-encoded and JSON-escaped forms, longest first', () => {
    const secrets = secretValues(schema, { apiKey: 'p@ss/w"rd', pin: 1234, region: 'eu' });
    expect(secrets).toEqual(['p@ss/w"rd', '1234']);
    const text = `failed: p@ss/w"rd ${encodeURIComponent('p@ss/w"rd')} {"k":"p@ss/w\\"rd"} pin=1234 region=eu`;
    expect(redactSecrets(text, secrets)).toBe(
      'failed: [REDACTED] [REDACTED] {"k":"[REDACTED]"} pin=[REDACTED] region=eu',
    );
    expect(redactSecrets('token abcdef and abc', ['abc', 'abcdef'])).toBe('token [REDACTED] and [REDACTED]');
    expect(redactSecrets('unchanged', ['', 'zzz'])).toBe('unchanged');
  });
});
