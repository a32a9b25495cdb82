import { createHash, hkdfSync, randomBytes, randomUUID, scryptSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, HayError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Name of the key file inside the data dir. */
export const KEY_FILE_NAME = 'encryption.key';

/**
 * Fixed salt for deriving a key from a passphrase in HAY_ENCRYPTION_KEY. It is fixed on purpose: the same
 * passphrase must give the same key on every boot and every host. Changing it makes every stored secret
 * unreadable, so it is versioned in the string.
 */
const PASSPHRASE_SALT = 'hay-plugins/HAY_ENCRYPTION_KEY/scrypt/v1';
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const MIN_PASSPHRASE_LENGTH = 16;
const KEY_BYTES = 32;

/** On-disk shape of `<dataDir>/encryption.key`. */
export interface KeyFile {
  current: string;
  keys: Record<string, string>;
}

export interface KeyRingLoadOptions {
  dataDir: string;
  /** Value of HAY_ENCRYPTION_KEY; when set it wins and the key file is neither read nor written. */
  envKey?: string | undefined;
  logger?: Logger;
}

/** First 8 hex chars of SHA-256 of the raw key: stored next to each ciphertext to pick the key. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * Turns HAY_ENCRYPTION_KEY into a 32-byte key. Accepted, in this order:
 *  - 64 hex characters (32 bytes);
 *  - base64 or base64url of exactly 32 bytes (43 characters, or 44 with one `=`);
 *  - any other string of at least 16 characters, treated as a passphrase and stretched with scrypt
 *    (N=2^15, r=8, p=1) and the fixed salt above. Runs once at boot (~100 ms).
 * Throws ConfigError naming HAY_ENCRYPTION_KEY for anything else; the value itself is never echoed.
 */
export function parseEnvKey(raw: string): Buffer {
  if (raw !== raw.trim())
    throw new ConfigError('HAY_ENCRYPTION_KEY has leading or trailing whitespace; remove it');
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(raw)) {
    const key = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === KEY_BYTES) return key;
  }
  if (raw.length < MIN_PASSPHRASE_LENGTH)
    throw new ConfigError(
      `HAY_ENCRYPTION_KEY is too short (${raw.length} characters): use 32 random bytes as base64 ` +
        `(openssl rand -base64 32), 64 hex characters, or a passphrase of at least ${MIN_PASSPHRASE_LENGTH} characters`,
    );
  return scryptSync(raw, PASSPHRASE_SALT, KEY_BYTES, SCRYPT);
}

/**
 * The encryption keys of this host, built once at boot by `KeyRing.load`. One key is current (used to
 * encrypt); all keys decrypt. Rotation contract, safe against interruption at any point:
 *   1. `rotate()` persists a new current key (old keys stay);
 *   2. the caller re-encrypts every stored value (see reencryptValues), row by row;
 *   3. only after every row is rewritten, `retire(oldKeyId)` drops the old key.
 * A crash between 1 and 3 loses nothing: every value is readable by some key still in the file.
 * When the ring comes from HAY_ENCRYPTION_KEY it holds exactly that key and cannot rotate or retire.
 */
export class KeyRing {
  private readonly keys: Map<string, Buffer>;
  private current: string;
  private readonly filePath: string | undefined;
  private pending: Promise<unknown> = Promise.resolve();

  private constructor(keys: Map<string, Buffer>, current: string, filePath: string | undefined) {
    this.keys = keys;
    this.current = current;
    this.filePath = filePath;
  }

  /**
   * HAY_ENCRYPTION_KEY wins when set (a key file is then ignored, with a warning). Otherwise reads
   * `<dataDir>/encryption.key`, creating it (mode 0600, atomically, first writer wins) on first start.
   * Throws ConfigError for a bad env value or a key file that is unreadable or malformed.
   */
  static async load(options: KeyRingLoadOptions): Promise<KeyRing> {
    const filePath = path.join(options.dataDir, KEY_FILE_NAME);
    if (options.envKey !== undefined && options.envKey !== '') {
      const key = parseEnvKey(options.envKey);
      if (await exists(filePath))
        options.logger?.warn({ file: filePath }, 'HAY_ENCRYPTION_KEY is set; ignoring the key file');
      const id = keyIdOf(key);
      return new KeyRing(new Map([[id, key]]), id, undefined);
    }
    let file = await readKeyFile(filePath);
    if (!file) {
      const key = randomBytes(KEY_BYTES);
      const id = keyIdOf(key);
      const created = await createKeyFileExclusive(filePath, {
        current: id,
        keys: { [id]: key.toString('base64') },
      });
      if (created) options.logger?.info({ file: filePath, keyId: id }, 'generated a new encryption key');
      file = await readKeyFile(filePath);
      if (!file) throw new ConfigError(`${filePath} vanished right after it was written`);
    } else {
      const mode = (await fs.stat(filePath)).mode & 0o777;
      if ((mode & 0o077) !== 0)
        options.logger?.warn(
          { file: filePath, mode: mode.toString(8) },
          'encryption key file is readable by other users; chmod 600 it',
        );
    }
    return KeyRing.fromFile(file, filePath);
  }

  /** A ring held only in memory (tests, tools). The first key is current. */
  static fromKeys(keys: readonly Buffer[]): KeyRing {
    const first = keys[0];
    if (!first) throw new RangeError('KeyRing.fromKeys needs at least one key');
    const map = new Map<string, Buffer>();
    for (const k of keys) {
      if (k.length !== KEY_BYTES)
        throw new RangeError(`encryption keys are ${KEY_BYTES} bytes; got ${k.length}`);
      map.set(keyIdOf(k), Buffer.from(k));
    }
    return new KeyRing(map, keyIdOf(first), undefined);
  }

  private static fromFile(file: KeyFile, filePath: string): KeyRing {
    const map = new Map<string, Buffer>();
    for (const [id, b64] of Object.entries(file.keys)) map.set(id, Buffer.from(b64, 'base64'));
    return new KeyRing(map, file.current, filePath);
  }

  get currentKeyId(): string {
    return this.current;
  }

  /** Ids of every key that can decrypt, current first. */
  keyIds(): string[] {
    return [this.current, ...[...this.keys.keys()].filter((id) => id !== this.current)];
  }

  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  /** Where the ring persists, or undefined when it came from HAY_ENCRYPTION_KEY or fromKeys. */
  get persistedAt(): string | undefined {
    return this.filePath;
  }

  /** The raw key for `keyId`, or undefined when the ring does not hold it. For SecretBox only. */
  keyFor(keyId: string): Buffer | undefined {
    const key = this.keys.get(keyId);
    return key && Buffer.from(key);
  }

  /**
   * A 32-byte key for another purpose (e.g. signing platform tokens), derived from the CURRENT key with
   * HKDF-SHA256 and `purpose` as info. Changes when the ring rotates.
   */
  deriveKey(purpose: string): Buffer {
    const key = this.keys.get(this.current);
    if (!key)
      throw new HayError('SECRET_KEY_INVALID', `current key ${this.current} is missing from the key ring`);
    return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `hay-plugins/${purpose}`, KEY_BYTES));
  }

  /**
   * Adds a fresh random key, makes it current and persists the ring (temp file + fsync + rename) before
   * resolving. Old keys stay for decrypting. Calls are serialized. Returns the new key id.
   */
  rotate(): Promise<string> {
    return this.serialize(async () => {
      const filePath = this.requireFile('rotate');
      let key = randomBytes(KEY_BYTES);
      while (this.keys.has(keyIdOf(key))) key = randomBytes(KEY_BYTES);
      const id = keyIdOf(key);
      const next = new Map(this.keys).set(id, key);
      await writeKeyFileAtomic(filePath, toFile(next, id));
      this.keys.set(id, key);
      this.current = id;
      return id;
    });
  }

  /**
   * Drops `keyId` from the ring and the file. Call only after no stored value uses it any more
   * (collectKeyIds helps check). Refuses the current key. Idempotent for ids not in the ring.
   */
  retire(keyId: string): Promise<void> {
    return this.serialize(async () => {
      const filePath = this.requireFile('retire');
      if (keyId === this.current)
        throw new HayError('SECRET_KEY_INVALID', `key ${keyId} is the current key and cannot be retired`);
      if (!this.keys.has(keyId)) return;
      const next = new Map(this.keys);
      next.delete(keyId);
      await writeKeyFileAtomic(filePath, toFile(next, this.current));
      this.keys.delete(keyId);
    });
  }

  private requireFile(op: string): string {
    if (this.filePath === undefined)
      throw new ConfigError(
        `cannot ${op} keys while HAY_ENCRYPTION_KEY is set (or for an in-memory ring); ` +
          `unset HAY_ENCRYPTION_KEY to use <dataDir>/${KEY_FILE_NAME}`,
      );
    return this.filePath;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.pending.then(fn, fn);
    this.pending = run.catch(() => undefined);
    return run;
  }
}

function toFile(keys: ReadonlyMap<string, Buffer>, current: string): KeyFile {
  const out: KeyFile = { current, keys: {} };
  for (const [id, key] of keys) out.keys[id] = key.toString('base64');
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads and checks the key file; undefined when it does not exist. */
async function readKeyFile(filePath: string): Promise<KeyFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${filePath}: ${(err as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new ConfigError(`${filePath} is not a valid key file (${why}); restore it from backup`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) return bad('not an object');
  const { current, keys } = parsed as Record<string, unknown>;
  if (typeof current !== 'string') return bad('"current" is missing');
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) return bad('"keys" is missing');
  const out: KeyFile = { current, keys: {} };
  for (const [id, b64] of Object.entries(keys)) {
    if (typeof b64 !== 'string') return bad(`key ${id} is not a string`);
    const key = Buffer.from(b64, 'base64');
    if (key.length !== KEY_BYTES) return bad(`key ${id} is not ${KEY_BYTES} bytes`);
    if (keyIdOf(key) !== id) return bad(`key ${id} does not match its id`);
    out.keys[id] = b64;
  }
  if (!(current in out.keys)) return bad(`current key ${current} is not in "keys"`);
  return out;
}

async function writeTemp(filePath: string, file: KeyFile): Promise<string> {
  await fs.mkdir(path.dirname(filePath), { recursive: true, mode: 0o700 });
  const tmp = `${filePath}.tmp-${randomUUID()}`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(JSON.stringify(file, null, 2) + '\n', 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces the key file atomically: write temp, fsync, rename over, fsync the directory. */
async function writeKeyFileAtomic(filePath: string, file: KeyFile): Promise<void> {
  const tmp = await writeTemp(filePath, file);
  try {
    await fs.rename(tmp, filePath);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(path.dirname(filePath));
}

/**
 * Creates the key file only if none exists (hard link of a fsynced temp file), so two processes booting
 * at once agree on one key. Returns false when another writer won; the caller then reads theirs.
 */
async function createKeyFileExclusive(filePath: string, file: KeyFile): Promise<boolean> {
  const tmp = await writeTemp(filePath, file);
  try {
    await fs.link(tmp, filePath);
    await syncDir(path.dirname(filePath));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new ConfigError(`cannot create ${filePath}: ${(err as Error).message}`);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}
