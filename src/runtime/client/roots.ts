import { pathToFileURL } from 'node:url';

/** One MCP root the host offers a plugin server (answer to roots/list). */
export interface ClientRoot {
  uri: string;
  name?: string;
}

/** Default wait after answering roots/list at connect, for the server to apply the roots. */
export const DEFAULT_ROOTS_SETTLE_MS = 200;

/**
 * The single root a local plugin gets: its private data folder as the plugin process sees it (`/data` inside
 * bubblewrap, the host folder otherwise), as a file:// URI.
 */
export function dataDirRoot(dataDir: string): ClientRoot {
  return { uri: pathToFileURL(dataDir).href, name: 'data' };
}
