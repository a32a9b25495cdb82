import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateAdminToken } from './api-keys.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin token: `configured` when set (HAY_ADMIN_TOKEN), else the one saved in
 * `<dataDir>/admin-token`, else a new random one written there with mode 0600 (exclusive create).
 */
export async function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): Promise<{ token: string; source: 'env' | 'file' | 'generated'; file: string }> {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  if (configured) return { token: configured, source: 'env', file };
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) return { token, source: 'file', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const token = generateAdminToken();
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return resolveAdminToken(undefined, dataDir);
    throw err;
  }
  await chmod(file, 0o600);
  return { token, source: 'generated', file };
}
