import type { AuditLog } from '../audit/audit-log.js';
import { HayError } from '../errors.js';
import type { KeyRing } from './key-ring.js';
import { collectKeyIds, reencryptValues, type SecretBox } from './secret-box.js';

/** The stored-configuration access key rotation needs (PluginSettingsService implements it). */
export interface RotatableStore {
  allStored(): Promise<{ id: string; configuration: Record<string, unknown> }[]>;
  storedById(id: string): Promise<Record<string, unknown> | undefined>;
  /** Compare-and-swap: writes `next` only if the row still holds `expected`; true when written. */
  replaceStoredIf(
    id: string,
    expected: Record<string, unknown>,
    next: Record<string, unknown>,
  ): Promise<boolean>;
}

/** Attempts per row before rotation gives up on a row that keeps changing under it. */
const MAX_ATTEMPTS = 20;

/**
 * Adds a new current key, re-encrypts every stored configuration with it, then retires keys no stored
 * value uses. Each row is re-encrypted with compare-and-swap on its current value: a configuration
 * written meanwhile (e.g. plugins.configure) makes the swap miss, and the row is read again and
 * re-encrypted from what is stored now, so no concurrent update is ever reverted. An interruption leaves
 * every value readable: old keys are retired last.
 */
export async function rotateKeys(
  ring: KeyRing,
  box: SecretBox,
  store: RotatableStore,
  audit: AuditLog,
): Promise<{ reencrypted: number; keyId: string }> {
  const keyId = await ring.rotate();
  let reencrypted = 0;
  for (const row of await store.allStored()) {
    let current: Record<string, unknown> | undefined = row.configuration;
    for (let attempt = 0; ; attempt++) {
      if (current === undefined) break; // row deleted meanwhile
      const { value, changed } = reencryptValues(current, box);
      if (changed === 0) break;
      if (await store.replaceStoredIf(row.id, current, value)) {
        reencrypted += changed;
        break;
      }
      if (attempt + 1 >= MAX_ATTEMPTS)
        throw new HayError(
          'CONFLICT',
          `key rotation: configuration ${row.id} kept changing during ${MAX_ATTEMPTS} attempts; run the rotation again (old keys are kept, nothing is lost)`,
        );
      current = await store.storedById(row.id);
    }
  }
  const used = new Set<string>();
  for (const row of await store.allStored()) collectKeyIds(row.configuration, used);
  for (const id of ring.keyIds()) if (id !== keyId && !used.has(id)) await ring.retire(id);
  audit.record({
    organizationId: null,
    actor: 'admin',
    action: 'secrets.rotate',
    outcome: 'ok',
    details: { keyId, reencrypted },
  });
  return { reencrypted, keyId };
}
