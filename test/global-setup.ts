import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../src/db/database.js';
import { startPgServer, type PgServer } from './helpers/pg-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of a real PostgreSQL server for this test run. */
    pgUrl: string;
    /** A migrated PGlite data dir; copy it (test/helpers/db.ts) instead of creating a new one. */
    pgliteTemplateDir: string;
  }
}

/**
 * Runs once per suite: starts a real PostgreSQL server (unless TEST_DATABASE_URL points at one) and
 * prepares a migrated PGlite template. Teardown stops and removes both.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: PgServer | undefined;
  let pgUrl = process.env.TEST_DATABASE_URL;
  if (!pgUrl) {
    server = await startPgServer();
    pgUrl = server.url;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hay-pglite-tpl-'));
  const database = await openDatabase({ databaseUrl: undefined, dataDir: tmp });
  await database.close();
  project.provide('pgUrl', pgUrl);
  project.provide('pgliteTemplateDir', path.join(tmp, 'pglite'));
  return async () => {
    server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  };
}
