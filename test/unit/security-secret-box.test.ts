import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HayError } from '../../src/errors.js';
import { KEY_FILE_NAME, KeyRing, keyIdOf, parseEnvKey } from '../../src/security/key-ring.js';
import {
  SecretBox,
  collectKeyIds,
  isEncrypted,
  keyIdOfValue,
  reencryptValues,
} from '../../src/security/secret-box.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'hay-keyring-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function expectHayError(fn: () => unknown, code: string, message: RegExp): HayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HayError);
    const e = err as HayError;
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    return e;
  }
  throw new Error('expected a throw');
}

describe('SecretBox', () => {
  const box = new SecretBox(KeyRing.fromKeys([randomBytes(32)]));

  it('round-trips, including empty and unicode strings', () => {
    for (const plain of ['sk-live-123', '', 'päss wörd ✓ 🔑', 'a:b:c']) {
      const enc = box.encrypt(plain);
      expect(isEncrypted(enc)).toBe(true);
      expect(enc).toMatch(/^enc:v1:[0-9a-f]{8}:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]*$/);
      expect(enc).not.toContain(plain || 'never');
      expect(box.decrypt(enc)).toBe(plain);
    }
  });

  it('uses a random IV: two encryptions of one value differ', () => {
    const a = box.encrypt('same');
    const b = box.encrypt('same');
    expect(a).not.toBe(b);
    expect(a.split(':')[3]).not.toBe(b.split(':')[3]);
  });

  it('stores the current key id with the ciphertext', () => {
    expect(keyIdOfValue(box.encrypt('x'))).toBe(box.currentKeyId);
    expect(keyIdOfValue('plain')).toBeUndefined();
  });

  it('detects tampering with ciphertext, tag or IV', () => {
    const enc = box.encrypt('secret-value');
    const parts = enc.split(':');
    const flip = (b64: string): string => {
      const buf = Buffer.from(b64, 'base64');
      buf[0] = (buf[0] ?? 0) ^ 1;
      return buf.toString('base64');
    };
    for (const idx of [3, 4, 5]) {
      const copy = [...parts];
      copy[idx] = flip(copy[idx] ?? '');
      const e = expectHayError(
        () => box.decrypt(copy.join(':')),
        'SECRET_KEY_INVALID',
        /failed authentication/,
      );
      expect(e.message).toContain(box.currentKeyId);
      expect(e.message).not.toContain('secret-value');
    }
  });

  it('fails loudly for a value from another key, naming the key id', () => {
    const other = new SecretBox(KeyRing.fromKeys([randomBytes(32)]));
    const enc = other.encrypt('their-secret');
    const e = expectHayError(
      () => box.decrypt(enc),
      'SECRET_KEY_INVALID',
      new RegExp(`encrypted with key ${other.currentKeyId}, which this host does not have`),
    );
    expect(e.message).not.toContain('their-secret');
  });

  it('fails when the key id is forged to ours but the key differs', () => {
    const other = new SecretBox(KeyRing.fromKeys([randomBytes(32)]));
    const forged = other.encrypt('x').replace(other.currentKeyId, box.currentKeyId);
    expectHayError(() => box.decrypt(forged), 'SECRET_KEY_INVALID', /failed authentication/);
  });

  it('rejects malformed values without echoing them', () => {
    for (const bad of ['plain-text', 'enc:v1:', 'enc:v1:zz:a:b:c', 'enc:v1:0011aabb:AAAA:AAAA:AAAA']) {
      const e = expectHayError(() => box.decrypt(bad), 'SECRET_KEY_INVALID', /not a valid encrypted value/);
      if (bad !== 'enc:v1:') expect(e.message).not.toContain(bad);
    }
  });
});

describe('parseEnvKey', () => {
  it('accepts 32-byte hex, base64 and base64url', () => {
    const key = randomBytes(32);
    expect(parseEnvKey(key.toString('hex')).equals(key)).toBe(true);
    expect(parseEnvKey(key.toString('base64')).equals(key)).toBe(true);
    expect(parseEnvKey(key.toString('base64url')).equals(key)).toBe(true);
  });

  it('derives a stable key from a passphrase', () => {
    const a = parseEnvKey('correct horse battery staple');
    expect(a.length).toBe(32);
    expect(parseEnvKey('correct horse battery staple').equals(a)).toBe(true);
    expect(parseEnvKey('correct horse battery stapler').equals(a)).toBe(false);
  });

  it('rejects short or padded values with a message naming HAY_ENCRYPTION_KEY', () => {
    expect(() => parseEnvKey('short')).toThrow(/^HAY_ENCRYPTION_KEY is too short \(5 characters\)/);
    expect(() => parseEnvKey(' ' + randomBytes(32).toString('hex'))).toThrow(
      'HAY_ENCRYPTION_KEY has leading or trailing whitespace; remove it',
    );
  });
});

describe('KeyRing.load', () => {
  it('generates the key file on first start with mode 0600 and reloads the same key', async () => {
    const dataDir = path.join(tempDir(), 'nested', 'data');
    const ring = await KeyRing.load({ dataDir });
    const file = path.join(dataDir, KEY_FILE_NAME);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const json = JSON.parse(readFileSync(file, 'utf8')) as { current: string; keys: Record<string, string> };
    expect(json.current).toBe(ring.currentKeyId);
    expect(keyIdOf(Buffer.from(json.keys[json.current] ?? '', 'base64'))).toBe(ring.currentKeyId);
    expect(readdirSync(dataDir)).toEqual([KEY_FILE_NAME]);

    const enc = new SecretBox(ring).encrypt('persisted');
    const again = await KeyRing.load({ dataDir });
    expect(again.currentKeyId).toBe(ring.currentKeyId);
    expect(new SecretBox(again).decrypt(enc)).toBe('persisted');
  });

  it('agrees on one key when two loads race on first start', async () => {
    const dataDir = tempDir();
    const rings = await Promise.all([1, 2, 3, 4].map(() => KeyRing.load({ dataDir })));
    expect(new Set(rings.map((r) => r.currentKeyId)).size).toBe(1);
    expect(readdirSync(dataDir)).toEqual([KEY_FILE_NAME]);
  });

  it('lets HAY_ENCRYPTION_KEY win over an existing key file', async () => {
    const dataDir = tempDir();
    const fileRing = await KeyRing.load({ dataDir });
    const envKey = randomBytes(32);
    const ring = await KeyRing.load({ dataDir, envKey: envKey.toString('base64') });
    expect(ring.currentKeyId).toBe(keyIdOf(envKey));
    expect(ring.currentKeyId).not.toBe(fileRing.currentKeyId);
    expect(ring.persistedAt).toBeUndefined();
    await expect(ring.rotate()).rejects.toThrow(/cannot rotate keys while HAY_ENCRYPTION_KEY is set/);
  });

  it('does not create a key file when HAY_ENCRYPTION_KEY is set', async () => {
    const dataDir = tempDir();
    await KeyRing.load({ dataDir, envKey: 'a passphrase that is long enough' });
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('fails on a bad env key naming HAY_ENCRYPTION_KEY', async () => {
    await expect(KeyRing.load({ dataDir: tempDir(), envKey: 'tiny' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/^HAY_ENCRYPTION_KEY is too short/),
    });
  });

  it('fails on a corrupt key file instead of replacing it', async () => {
    const dataDir = tempDir();
    const file = path.join(dataDir, KEY_FILE_NAME);
    writeFileSync(file, '{"current":"00000000","keys":{}}', { mode: 0o600 });
    await expect(KeyRing.load({ dataDir })).rejects.toThrow(
      `${file} is not a valid key file (current key 00000000 is not in "keys"); restore it from backup`,
    );
    writeFileSync(file, 'not json');
    await expect(KeyRing.load({ dataDir })).rejects.toThrow(/not a valid key file \(not JSON\)/);
    expect(readFileSync(file, 'utf8')).toBe('not json');
  });
});

describe('rotation', () => {
  it('rotates, re-encrypts, retires; interrupted rotation loses nothing', async () => {
    const dataDir = tempDir();
    const ring = await KeyRing.load({ dataDir });
    const box = new SecretBox(ring);
    const oldId = ring.currentKeyId;
    const row = { apiKey: box.encrypt('k1'), nested: [box.encrypt('k2'), 'plain'], n: 3 };

    const newId = await ring.rotate();
    expect(newId).not.toBe(oldId);
    expect(ring.currentKeyId).toBe(newId);
    expect(ring.keyIds()).toEqual([newId, oldId]);

    // "Crash" before rewriting rows: a fresh boot still reads old values and encrypts with the new key.
    const rebooted = new SecretBox(await KeyRing.load({ dataDir }));
    expect(rebooted.currentKeyId).toBe(newId);
    expect(rebooted.decrypt(row.apiKey)).toBe('k1');

    const { value, changed } = reencryptValues(row, rebooted);
    expect(changed).toBe(2);
    expect(value.n).toBe(3);
    expect(value.nested[1]).toBe('plain');
    expect([...collectKeyIds(value)]).toEqual([newId]);
    expect(rebooted.decrypt(value.apiKey)).toBe('k1');
    expect(rebooted.decrypt(value.nested[0] ?? '')).toBe('k2');
    expect(reencryptValues(value, rebooted).changed).toBe(0);

    await expect(ring.retire(newId)).rejects.toThrow(`key ${newId} is the current key and cannot be retired`);
    await ring.retire(oldId);
    await ring.retire(oldId);
    expect(ring.keyIds()).toEqual([newId]);
    const afterRetire = new SecretBox(await KeyRing.load({ dataDir }));
    expect(afterRetire.decrypt(value.apiKey)).toBe('k1');
    expectHayError(() => afterRetire.decrypt(row.apiKey), 'SECRET_KEY_INVALID', new RegExp(oldId));
    expect(statSync(path.join(dataDir, KEY_FILE_NAME)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir)).toEqual([KEY_FILE_NAME]);
  });

  it('serializes concurrent rotations', async () => {
    const dataDir = tempDir();
    const ring = await KeyRing.load({ dataDir });
    const ids = await Promise.all([ring.rotate(), ring.rotate(), ring.rotate()]);
    expect(new Set(ids).size).toBe(3);
    const reloaded = await KeyRing.load({ dataDir });
    expect(reloaded.keyIds().sort()).toEqual(ring.keyIds().sort());
    expect(reloaded.keyIds()).toHaveLength(4);
  });

  it('derives purpose keys from the current key', () => {
    const ring = KeyRing.fromKeys([randomBytes(32)]);
    const a = ring.deriveKey('platform-token');
    expect(a.length).toBe(32);
    expect(ring.deriveKey('platform-token').equals(a)).toBe(true);
    expect(ring.deriveKey('other').equals(a)).toBe(false);
  });
});
