import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { HayError } from '../errors.js';
import type { KeyRing } from './key-ring.js';

/** Every encrypted value starts with this; the rest is `<keyId>:<iv b64>:<tag b64>:<ciphertext b64>`. */
export const ENCRYPTED_PREFIX = 'enc:v1:';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

interface Parsed {
  keyId: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/** True for strings in the `enc:v1:` format (does not check that they decrypt). */
export function isEncrypted(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(ENCRYPTED_PREFIX);
}

/** The key id an encrypted value names, or undefined for anything else. */
export function keyIdOfValue(value: unknown): string | undefined {
  if (!isEncrypted(value)) return undefined;
  const id = value.slice(ENCRYPTED_PREFIX.length).split(':', 1)[0];
  return id === undefined || id === '' ? undefined : id;
}

function parse(value: string): Parsed {
  const malformed = (): never => {
    throw new HayError(
      'SECRET_KEY_INVALID',
      'stored secret is not a valid encrypted value (expected enc:v1:<keyId>:<iv>:<tag>:<ciphertext>)',
    );
  };
  if (!isEncrypted(value)) return malformed();
  const parts = value.slice(ENCRYPTED_PREFIX.length).split(':');
  if (parts.length !== 4) return malformed();
  const [keyId = '', iv = '', tag = '', ct = ''] = parts;
  if (!/^[0-9a-f]{8}$/.test(keyId) || !B64.test(iv) || !B64.test(tag) || !B64.test(ct)) return malformed();
  const parsed = {
    keyId,
    iv: Buffer.from(iv, 'base64'),
    tag: Buffer.from(tag, 'base64'),
    ciphertext: Buffer.from(ct, 'base64'),
  };
  if (parsed.iv.length !== IV_BYTES || parsed.tag.length !== TAG_BYTES) return malformed();
  return parsed;
}

/**
 * AES-256-GCM for values stored at rest (plugin configuration secrets). Each encrypt uses a fresh random
 * 12-byte IV and the ring's current key; the key id travels with the ciphertext so any key still in the
 * ring decrypts. Failures throw HayError('SECRET_KEY_INVALID') naming the key id, never the value.
 */
export class SecretBox {
  constructor(private readonly ring: KeyRing) {}

  get currentKeyId(): string {
    return this.ring.currentKeyId;
  }

  isEncrypted(value: unknown): value is string {
    return isEncrypted(value);
  }

  encrypt(plain: string): string {
    const keyId = this.ring.currentKeyId;
    const key = this.ring.keyFor(keyId);
    if (!key) throw new HayError('SECRET_KEY_INVALID', `current key ${keyId} is missing from the key ring`);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${ENCRYPTED_PREFIX}${keyId}:${iv.toString('base64')}:${tag.toString('base64')}:${ct.toString('base64')}`;
  }

  /** Plaintext of `value`; throws SECRET_KEY_INVALID for a malformed value, unknown key id or bad tag. */
  decrypt(value: string): string {
    const { keyId, iv, tag, ciphertext } = parse(value);
    const key = this.ring.keyFor(keyId);
    if (!key)
      throw new HayError(
        'SECRET_KEY_INVALID',
        `stored secret was encrypted with key ${keyId}, which this host does not have ` +
          `(keys: ${this.ring.keyIds().join(', ')}); set HAY_ENCRYPTION_KEY or restore the encryption.key file that holds it`,
      );
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw new HayError(
        'SECRET_KEY_INVALID',
        `stored secret encrypted with key ${keyId} failed authentication: it was altered, or a different key has that id`,
      );
    }
  }

  /** True when `value` is encrypted with a key other than the current one. */
  needsReencrypt(value: unknown): boolean {
    const id = keyIdOfValue(value);
    return id !== undefined && id !== this.ring.currentKeyId;
  }
}

/**
 * Re-encrypts with the current key every encrypted string found anywhere in `value` (objects and arrays
 * are walked; other values are copied as-is). Pure: returns a new value and how many strings changed;
 * values already on the current key are left untouched. Throws like SecretBox.decrypt when a value cannot
 * be decrypted, so a rotation never writes back something it could not read.
 */
export function reencryptValues<T>(value: T, box: SecretBox): { value: T; changed: number } {
  let changed = 0;
  const walk = (v: unknown): unknown => {
    if (isEncrypted(v)) {
      if (!box.needsReencrypt(v)) return v;
      changed++;
      return box.encrypt(box.decrypt(v));
    }
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v)) out[k] = walk(inner);
      return out;
    }
    return v;
  };
  const out = walk(value) as T;
  return { value: out, changed };
}

/** Every key id named by an encrypted string anywhere in `value`: check before KeyRing.retire. */
export function collectKeyIds(value: unknown, into: Set<string> = new Set()): Set<string> {
  const id = keyIdOfValue(value);
  if (id !== undefined) into.add(id);
  else if (Array.isArray(value)) for (const v of value) collectKeyIds(v, into);
  else if (typeof value === 'object' && value !== null)
    for (const v of Object.values(value)) collectKeyIds(v, into);
  return into;
}
