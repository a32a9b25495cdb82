import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { httpStatusOf } from '../api/error-map.js';
import { AuthError, isHayError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { CSRF_HEADER, readCookie, SESSION_COOKIE, sessionCookie } from './cookies.js';
import type { WebSessions } from './service.js';

const signInBody = z.object({ token: z.string().min(1).max(512) });

/**
 * The dashboard's session endpoints (JSON; errors as `{error: {code, message}}`):
 * `POST /v1/session {token}` signs in with an organization API key or the admin token and sets the
 * HttpOnly session cookie; `GET /v1/session` describes the cookie's session (with its CSRF token);
 * `DELETE /v1/session` (with X-Hay-CSRF) signs out, deletes the row and clears the cookie.
 */
export function registerSessionRoutes(
  app: FastifyInstance,
  deps: {
    sessions: WebSessions;
    logger: Logger;
    /** Mark the cookie Secure on every response (the public URL is https behind a TLS proxy). */
    alwaysSecure?: boolean;
  },
) {
  const secure = (req: FastifyRequest) => deps.alwaysSecure === true || req.protocol === 'https';
  const fail = (reply: FastifyReply, err: unknown) => {
    if (!isHayError(err)) deps.logger.error({ err }, 'session route failed');
    const code = isHayError(err) ? err.code : 'INTERNAL';
    return reply
      .status(isHayError(err) ? httpStatusOf(err.code) : 500)
      .header('cache-control', 'no-store')
      .send({ error: { code, message: isHayError(err) ? err.message : 'Internal error' } });
  };

  app.post('/v1/session', async (req, reply) => {
    try {
      const parsed = signInBody.safeParse(req.body);
      if (!parsed.success)
        throw new ValidationError('INPUT_INVALID', 'send {"token": "<organization API key or admin token>"}');
      const { id, info, maxAgeSeconds } = await deps.sessions.signIn(parsed.data.token, req.ip);
      return reply
        .header('set-cookie', sessionCookie(id, maxAgeSeconds, secure(req)))
        .header('cache-control', 'no-store')
        .send(info);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get('/v1/session', async (req, reply) => {
    try {
      const id = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (id === undefined) throw new AuthError('UNAUTHORIZED', 'not signed in');
      return reply.header('cache-control', 'no-store').send(await deps.sessions.describe(id));
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.delete('/v1/session', async (req, reply) => {
    try {
      const id = readCookie(req.headers.cookie, SESSION_COOKIE);
      const csrf = req.headers[CSRF_HEADER];
      if (id !== undefined)
        await deps.sessions.signOut(id, typeof csrf === 'string' ? csrf : undefined, req.ip);
      return reply
        .header('set-cookie', sessionCookie('', 0, secure(req)))
        .header('cache-control', 'no-store')
        .send({ success: true });
    } catch (err) {
      return fail(reply, err);
    }
  });
}
