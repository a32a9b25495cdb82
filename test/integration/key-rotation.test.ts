import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';

/**
 * Issue 9, attack 7: a plugins.configure made while a key rotation runs must not be reverted by the
 * rotation writing back its re-encrypted snapshot. Run on PGlite and on the real PostgreSQL server.
 */
describe.each(DB_KINDS)('key rotation without lost updates (%s)', (kind) => {
  let db: TestDatabase | undefined;
  let t: TestHost | undefined;

  afterAll(async () => {
    await t?.close();
    await db?.dispose();
  });

  it('a configure made during the rotation survives it', async () => {
    let databaseUrl: string | undefined;
    if (kind === 'postgres') {
      db = await createTestDatabase('postgres');
      databaseUrl = db.databaseUrl;
      await db.database.close();
    }
    t = await startTestHost({
      ...(databaseUrl ? { databaseUrl } : {}),
      corePlugins: [],
      plugins: {
        'core/secretive': toolkitPlugin('secretive', {
          configSchema: {
            token: { type: 'string', encrypted: true },
            note: { type: 'string' },
          },
        }),
      },
    });
    const org = await t.createOrganization('rotating');
    await org.hay.plugins.enable.mutate({
      pluginId: 'secretive',
      configuration: { token: 'old-secret', note: 'before' },
    });
    const settings = t.host.services.settings;
    const key = t.host.services.registry.get(org.organizationId, 'secretive')?.key ?? '';
    // the rotation reads its snapshot, then (in this test) the org admin changes the configuration
    const allStored = settings.allStored.bind(settings);
    let raced = false;
    settings.allStored = async () => {
      const snapshot = await allStored();
      if (!raced) {
        raced = true;
        await org.hay.plugins.configure.mutate({
          pluginId: 'secretive',
          // the secret is omitted, so it keeps its sealed value under the old key
          configuration: { note: 'during' },
        });
      }
      return snapshot;
    };
    const out = await t.admin.admin.rotateEncryptionKey.mutate();
    expect(raced).toBe(true);
    const values = await settings.runtimeValues(org.organizationId, key, {
      token: { type: 'string', encrypted: true },
      note: { type: 'string' },
    });
    expect(values).toEqual({ token: 'old-secret', note: 'during' });
    // and every stored secret is under the new key (nothing left on a retired one)
    const stored = JSON.stringify(await allStored());
    expect(stored).toContain(out.keyId);
  });
});
