import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { packageRoot } from '../paths.js';
import { schema, type Schema } from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, Schema>;

/** An open database with migrations applied. `close()` releases every handle and is idempotent. */
export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

const MIGRATION_LOCK_KEY = 7_301_455_221;

/**
 * Opens PGlite under `${dataDir}/pglite` when `databaseUrl` is undefined, else a pg pool. Applies the
 * generated migrations (drizzle/); with real Postgres they run under an advisory lock so several host
 * nodes booting together migrate once.
 */
/**
 * postgresql.conf of the embedded database (PGlite writes it into the data folder at each open).
 * shared_buffers: PGlite's default of 128MB is resident from the start and was half the host's idle RSS
 * (docs/benchmarks.md, "Memory"); the host's tables are small and mostly written.
 */
const PGLITE_CONF = 'shared_buffers=16MB';

export async function openDatabase(options: {
  databaseUrl: string | undefined;
  dataDir: string;
}): Promise<Database> {
  const migrationsFolder = path.join(packageRoot(), 'drizzle');
  if (options.databaseUrl === undefined) {
    const dir = path.join(options.dataDir, 'pglite');
    await mkdir(dir, { recursive: true });
    const client = await PGlite.create(dir, { postgresqlconf: PGLITE_CONF });
    const db = drizzlePglite(client, { schema });
    try {
      await migratePglite(db, { migrationsFolder });
    } catch (err) {
      await client.close();
      throw err;
    }
    return closable(db as unknown as Db, 'pglite', () => client.close());
  }
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  pool.on('error', () => {
    // idle client errors surface on the next query; the pool replaces the client
  });
  const db = drizzlePg(pool, { schema });
  try {
    const lock = await pool.connect();
    try {
      await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      await migratePg(drizzlePg(lock, { schema }), { migrationsFolder });
    } finally {
      await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      lock.release();
    }
  } catch (err) {
    await pool.end();
    throw err;
  }
  return closable(db as unknown as Db, 'postgres', () => pool.end());
}

function closable(db: Db, kind: Database['kind'], release: () => Promise<void>): Database {
  let closing: Promise<void> | undefined;
  return {
    db,
    kind,
    close: () => (closing ??= release()),
  };
}
