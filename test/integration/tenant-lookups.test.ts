import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pluginInstances, pluginRegistry, organizations } from '../../src/db/schema.js';
import { KeyRing } from '../../src/security/key-ring.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { OrganizationService } from '../../src/tenancy/organizations.js';
import { PluginSettingsService } from '../../src/tenancy/plugin-settings.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';

/** Many organizations' lookups in one statement (more rows than one statement takes) on both databases. */
describe.each(DB_KINDS)('bulk tenant lookups (%s)', (kind) => {
  const opened: TestDatabase[] = [];
  afterAll(async () => {
    for (const t of opened) await t.dispose();
  });

  it('reads 1,200 enabled flags and writes 1,200 activity times, each right', async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    const { db } = t.database;
    const orgs = await db
      .insert(organizations)
      .values(Array.from({ length: 1_200 }, (_, i) => ({ name: `o${i}` })))
      .returning();
    const [plugin] = await db
      .insert(pluginRegistry)
      .values({
        pluginId: 'p',
        name: 'P',
        version: '1.0.0',
        pluginPath: 'core/p',
        checksum: 'x'.repeat(64),
        sourceType: 'core',
        status: 'ok',
      })
      .returning();
    if (!plugin) throw new Error('no plugin row');
    // every third org has no row, the rest alternate enabled / disabled
    await db
      .insert(pluginInstances)
      .values(
        orgs
          .filter((_, i) => i % 3 !== 0)
          .map((o, i) => ({ organizationId: o.id, pluginRegistryId: plugin.id, enabled: i % 2 === 0 })),
      );
    const expected = new Map<string, boolean>();
    orgs.forEach((o, i) => expected.set(o.id, i % 3 !== 0 && (i - Math.floor(i / 3) - 1) % 2 === 0));
    const settings = new PluginSettingsService(db, new SecretBox(KeyRing.fromKeys([randomBytes(32)])));
    const flags = await settings.enabledFlags(
      orgs.map((o) => ({ organizationId: o.id, pluginKey: plugin.id })),
    );
    expect(flags).toEqual(orgs.map((o) => expected.get(o.id)));

    const at = new Date('2026-12-02T10:00:00Z');
    await settings.recordActivity(orgs.map((o) => ({ orgId: o.id, pluginKey: plugin.id, at })));
    // an older time never moves a stored one backwards
    await settings.recordActivity(orgs.map((o) => ({ orgId: o.id, pluginKey: plugin.id, at: new Date(0) })));
    const rows = await db.select().from(pluginInstances);
    expect(rows).toHaveLength(800);
    for (const r of rows) expect(r.lastActivityAt?.toISOString()).toBe(at.toISOString());
  });

  it('authenticates 600 keys met in one turn with one lookup each, and refuses revoked and forged keys', async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    const orgsService = new OrganizationService(t.database.db, 'admin-token-for-test', {
      authCacheMs: 5_000,
    });
    const created: { apiKey: string; organization: { id: string } }[] = [];
    for (let i = 0; i < 600; i++) created.push(await orgsService.create(`k${i}`));
    const principals = await Promise.all(created.map((c) => orgsService.authenticate(c.apiKey)));
    principals.forEach((p, i) =>
      expect(p).toMatchObject({ kind: 'org', organizationId: created[i]?.organization.id }),
    );
    const first = created[0];
    if (!first || principals[0]?.kind !== 'org') throw new Error('no first key');
    // the same prefix with another tail is not that key
    const forged = `${first.apiKey.slice(0, 12)}${'A'.repeat(first.apiKey.length - 12)}`;
    await expect(orgsService.authenticate(forged)).rejects.toThrow('invalid or revoked API key');
    await orgsService.revokeApiKey(principals[0].keyId);
    await expect(orgsService.authenticate(first.apiKey)).rejects.toThrow('invalid or revoked API key');
    await expect(orgsService.authenticate(created[1]?.apiKey)).resolves.toMatchObject({ kind: 'org' });
  });
});
