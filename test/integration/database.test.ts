import { afterAll, describe, expect, it } from 'vitest';
import { organizations, pluginRegistry } from '../../src/db/schema.js';
import { openDatabase } from '../../src/db/database.js';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';

describe.each(DB_KINDS)('database (%s)', (kind) => {
  const opened: TestDatabase[] = [];
  afterAll(async () => {
    for (const t of opened) await t.dispose();
  });

  it('applies migrations and enforces plugin id scoping', async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    const { db } = t.database;
    const [org] = await db.insert(organizations).values({ name: 'acme' }).returning();
    expect(org?.id).toMatch(/^[0-9a-f-]{36}$/);
    const row = {
      pluginId: 'p',
      name: 'P',
      version: '1.0.0',
      pluginPath: 'core/p',
      checksum: 'x'.repeat(64),
      sourceType: 'core' as const,
      status: 'ok' as const,
    };
    await db.insert(pluginRegistry).values(row);
    await expect(db.insert(pluginRegistry).values(row)).rejects.toThrow();
    // the same id inside an organization is a different scope at the database level
    await db.insert(pluginRegistry).values({ ...row, sourceType: 'custom', organizationId: org!.id });
    await expect(
      db.insert(pluginRegistry).values({ ...row, sourceType: 'custom', organizationId: org!.id }),
    ).rejects.toThrow();
  });

  it('reopens with data intact and migrations idempotent', async () => {
    const t = await createTestDatabase(kind);
    opened.push(t);
    await t.database.db.insert(organizations).values({ name: 'kept' });
    await t.database.close();
    await t.database.close();
    const again = await openDatabase({ databaseUrl: t.databaseUrl, dataDir: t.dataDir });
    try {
      const rows = await again.db.select().from(organizations);
      expect(rows.map((r) => r.name)).toEqual(['kept']);
    } finally {
      await again.close();
    }
  });
});
