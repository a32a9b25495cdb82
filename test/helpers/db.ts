import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';

export type DbKind = 'pglite' | 'postgres';
export const DB_KINDS: readonly DbKind[] = ['pglite', 'postgres'];

export interface TestDatabase {
  database: Database;
  /** Pass as `databaseUrl` (undefined = PGlite in `dataDir`) to open the same data again, e.g. a host. */
  databaseUrl: string | undefined;
  dataDir: string;
  dispose(): Promise<void>;
}

/**
 * A fresh, migrated database: a copy of the PGlite template, or a new database on the suite's real
 * PostgreSQL server. `dispose()` closes it and removes its data.
 */
export async function createTestDatabase(kind: DbKind): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hay-test-'));
  if (kind === 'pglite') {
    cpSync(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
    const database = await openDatabase({ databaseUrl: undefined, dataDir });
    return {
      database,
      databaseUrl: undefined,
      dataDir,
      async dispose() {
        await database.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const admin = inject('pgUrl');
  const name = `hay_test_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = admin.replace(/\/[^/]*$/, `/${name}`);
  const database = await openDatabase({ databaseUrl: url, dataDir });
  return {
    database,
    databaseUrl: url,
    dataDir,
    async dispose() {
      await database.close();
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
