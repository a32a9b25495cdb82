/**
 * Runs once for the whole suite. Real PostgreSQL is expected at TEST_DATABASE_URL (started by .ci/run or
 * test/pg-server.ts); tests that need it skip with a visible reason only when HAY_TEST_ALLOW_NO_PG=1.
 */
export default async function setup(): Promise<void> {}
