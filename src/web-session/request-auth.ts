import type { FastifyRequest } from 'fastify';
import { bearerToken } from '../api/bearer.js';
import { CSRF_HEADER, readCookie, SESSION_COOKIE } from './cookies.js';

/**
 * How a request authenticates: `Authorization: Bearer` wins; without it, the dashboard's session cookie
 * with the CSRF token from the X-Hay-CSRF header (checked by WebSessions.authenticate).
 */
export interface RequestCredential {
  token: string | undefined;
  session: { id: string; csrf: string | undefined } | undefined;
}

export function requestCredential(req: FastifyRequest): RequestCredential {
  const token = bearerToken(req.headers.authorization);
  if (token !== undefined) return { token, session: undefined };
  const id = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (id === undefined) return { token: undefined, session: undefined };
  const csrf = req.headers[CSRF_HEADER];
  return { token: undefined, session: { id, csrf: typeof csrf === 'string' ? csrf : undefined } };
}
