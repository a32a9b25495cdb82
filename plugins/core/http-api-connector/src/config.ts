/** Settings injected by the host as environment variables (see configSchema in manifest.json). */
export interface ConnectorConfig {
  baseUrl: URL;
  apiKey: string;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Reads and checks the configuration; throws an Error naming the field to fix. */
export function readConfig(env: NodeJS.ProcessEnv): ConnectorConfig {
  const rawUrl = env.HTTP_API_BASE_URL?.trim() ?? '';
  if (rawUrl === '') throw new Error('baseUrl is not configured (HTTP_API_BASE_URL is empty)');
  let baseUrl: URL;
  try {
    baseUrl = new URL(rawUrl);
  } catch {
    throw new Error(`baseUrl ${JSON.stringify(rawUrl)} is not a valid URL`);
  }
  if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:') {
    throw new Error(`baseUrl must start with http:// or https:// (got ${baseUrl.protocol})`);
  }

  const apiKey = env.HTTP_API_KEY ?? '';
  if (apiKey === '') throw new Error('apiKey is not configured (HTTP_API_KEY is empty)');

  const rawTimeout = env.HTTP_API_TIMEOUT_MS?.trim() ?? '';
  const timeoutMs = rawTimeout === '' ? DEFAULT_TIMEOUT_MS : Number(rawTimeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new Error(
      `timeoutMs must be a positive number of milliseconds (got ${JSON.stringify(rawTimeout)})`,
    );
  }
  return { baseUrl, apiKey, timeoutMs };
}
