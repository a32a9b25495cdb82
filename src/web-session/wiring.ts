import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.js';
import { registerDashboardRoutes } from '../dashboard/static-routes.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { packageRoot } from '../paths.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import { registerSessionRoutes } from './routes.js';
import { WebSessions } from './service.js';

export interface WebWiringDeps {
  db: Db;
  logger: Logger;
  organizations: OrganizationService;
  audit: AuditLog;
  adminToken: string;
  options: {
    sessionTtlMs: number;
    sessionMaxPerKey: number;
    /** HostConfig.apiUrl: when it is https, the session cookie is always Secure. */
    publicUrl?: string | undefined;
    distDir?: string;
  };
}

/**
 * The dashboard area: sign-in sessions (for the API's auth middleware and the upload route) and the routes
 * serving the page (`/`, `/assets/*`, `/v1/session`). Holds no timers or sockets; nothing to close.
 */
export function wireWeb(deps: WebWiringDeps): {
  sessions: WebSessions;
  register(app: FastifyInstance): void;
} {
  const sessions = new WebSessions({
    db: deps.db,
    organizations: deps.organizations,
    audit: deps.audit,
    adminToken: deps.adminToken,
    ttlMs: deps.options.sessionTtlMs,
    maxPerKey: deps.options.sessionMaxPerKey,
  });
  return {
    sessions,
    register(app) {
      registerSessionRoutes(app, {
        sessions,
        logger: deps.logger,
        alwaysSecure: deps.options.publicUrl?.startsWith('https://') ?? false,
      });
      registerDashboardRoutes(app, {
        distDir: deps.options.distDir ?? path.join(packageRoot(), 'web', 'dist'),
      });
    },
  };
}
