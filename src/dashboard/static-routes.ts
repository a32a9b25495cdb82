import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The page's Content-Security-Policy: only the host's own scripts, styles and API; images also from data:
 * URLs (tool results) and https (plugin icons); no plugins, no framing, no <base>.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Paths the page's history routing never claims: unknown ones there stay JSON 404s. */
const API_PREFIXES = ['/trpc', '/v1', '/mcp', '/healthz', '/metrics', '/oauth', '/.well-known', '/assets'];

export interface DashboardRoutesOptions {
  /** The Vite build output (`web/dist`). Missing: `/` answers 503 with how to build it. */
  distDir: string;
}

/**
 * Serves the dashboard (the Vite build in `distDir`, listed once at registration, so only files present
 * then are served and no request path touches the file system): `/assets/*` with a year of immutable
 * caching (names carry content hashes), other files with `no-cache`, and `index.html` for `GET /` and any
 * non-API path asking for HTML (the page's own routes). Every response of the host gets nosniff,
 * `Referrer-Policy: no-referrer` and, unless the route set its own, the CSP above.
 */
export function registerDashboardRoutes(app: FastifyInstance, options: DashboardRoutesOptions): void {
  const files = listFiles(options.distDir);
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', DASHBOARD_CSP);
    return payload;
  });
  const index = files.get('/index.html');
  const sendIndex = (reply: FastifyReply) => {
    if (!index)
      return reply
        .status(503)
        .header('content-type', 'text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(
          'The dashboard is not built. Run `npm install` (or `npm run build:web`) in the hay-plugins folder, then restart.\n',
        );
    return reply
      .header('content-type', TYPES['.html'])
      .header('cache-control', 'no-cache')
      .header('x-frame-options', 'DENY')
      .send(index.body);
  };
  app.get('/', async (_req, reply) => sendIndex(reply));
  for (const [url, file] of files) {
    if (url === '/index.html') continue;
    app.get(url, async (_req, reply) =>
      reply
        .header('content-type', file.type)
        .header(
          'cache-control',
          url.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'public, max-age=300',
        )
        .send(file.body),
    );
  }
  app.setNotFoundHandler(async (req, reply) => {
    const url = req.url.split('?')[0] ?? '/';
    const isApi = API_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`));
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      !isApi &&
      req.headers.accept?.includes('text/html')
    )
      return sendIndex(reply);
    return reply
      .status(404)
      .send({ message: `Route ${req.method}:${url} not found`, error: 'Not Found', statusCode: 404 });
  });
}

/** Files under `dir` by URL path, read into memory (the build is a few hundred KB). */
function listFiles(dir: string): Map<string, { type: string; body: Buffer }> {
  const out = new Map<string, { type: string; body: Buffer }>();
  if (!existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const relPath = path.posix.join(rel, name);
      const abs = path.join(dir, relPath);
      if (statSync(abs).isDirectory()) walk(relPath);
      else {
        const type = TYPES[path.extname(name).toLowerCase()];
        if (type) out.set(`/${relPath}`, { type, body: readFileSync(abs) });
      }
    }
  };
  walk('');
  return out;
}
