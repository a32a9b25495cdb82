import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.js';
import { AuthError, ManifestError, ValidationError, isHayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PluginUploadService } from '../registry/uploads.js';
import type { OrganizationService } from '../tenancy/organizations.js';
import { httpStatusOf } from './error-map.js';
import type { WebSessions } from '../web-session/service.js';
import { requestCredential } from '../web-session/request-auth.js';

export interface UploadRouteDeps {
  organizations: OrganizationService;
  uploads: PluginUploadService;
  audit: AuditLog;
  logger: Logger;
  /** Where the archive is streamed before extraction (e.g. `<dataDir>/uploads`, mode 0700). */
  uploadsDir: string;
  /** HostConfig.uploadMaxBytes: larger archives are refused while streaming. */
  maxBytes: number;
  /** Dashboard sessions: a session cookie with its X-Hay-CSRF header is accepted like the key. */
  sessions?: Pick<WebSessions, 'authenticate'>;
}

/**
 * `POST /v1/plugins/upload`: multipart/form-data with exactly one file, in field `file`, and
 * `Authorization: Bearer <organization API key with role admin>`. Answers 200 `{pluginId, version}` or a
 * 4xx/5xx `{error: {code, message}}`, for MANIFEST_INVALID with `problems: [{file, pointer, message}]`.
 * A dashboard session cookie with its X-Hay-CSRF header may stand in for the bearer key. The archive is streamed to a temp file (deleted afterwards) and
 * handed to PluginUploadService. Authentication failures are audited.
 */
export function registerUploadRoutes(app: FastifyInstance, deps: UploadRouteDeps): void {
  void app.register(async (scope) => {
    await scope.register(multipart, {
      limits: { fileSize: deps.maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 100 },
      throwFileSizeLimit: true,
    });
    scope.post('/v1/plugins/upload', async (req, reply) => {
      let tmp: string | undefined;
      try {
        const caller = await authorize(req, deps);
        if (!req.isMultipart())
          throw new ValidationError(
            'UPLOAD_INVALID',
            'send multipart/form-data with the plugin zip in the field "file"',
          );
        await mkdir(deps.uploadsDir, { recursive: true, mode: 0o700 });
        tmp = path.join(deps.uploadsDir, `${randomUUID()}.zip`);
        let received = false;
        for await (const part of req.parts()) {
          if (part.type !== 'file') continue;
          if (part.fieldname !== 'file' || received) {
            part.file.resume();
            throw new ValidationError(
              'UPLOAD_INVALID',
              `unexpected file field "${part.fieldname}": send one file, in the field "file"`,
            );
          }
          await pipeline(part.file, createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
          received = true;
        }
        if (!received) throw new ValidationError('UPLOAD_INVALID', 'no file in the field "file"');
        const controller = new AbortController();
        req.raw.once('close', () => {
          if (!reply.raw.writableFinished) controller.abort();
        });
        const result = await deps.uploads.install(
          caller.organizationId,
          caller.actor,
          tmp,
          controller.signal,
        );
        return reply.send({ pluginId: result.pluginId, version: result.version });
      } catch (err) {
        const hay = isHayError(err) ? err : fromMultipartError(err, deps.maxBytes);
        if (!hay) deps.logger.error({ err }, 'plugin upload failed');
        const code = hay?.code ?? 'INTERNAL';
        return reply.status(httpStatusOf(code)).send({
          error: {
            code,
            message: hay?.message ?? 'Internal error',
            ...(err instanceof ManifestError ? { problems: err.problems.map(problemOf) } : {}),
          },
        });
      } finally {
        if (tmp) await rm(tmp, { force: true });
      }
    });
  });
}

async function authorize(
  req: FastifyRequest,
  deps: UploadRouteDeps,
): Promise<{ organizationId: string; actor: string }> {
  const { token, session } = requestCredential(req);
  let principal;
  try {
    principal =
      token === undefined && session && deps.sessions
        ? await deps.sessions.authenticate(session.id, session.csrf)
        : await deps.organizations.authenticate(token);
  } catch (err) {
    deps.audit.recordAuthFailure({
      ip: req.ip,
      token,
      reason: isHayError(err) ? err.message : 'error',
      route: 'plugins.upload',
    });
    throw err;
  }
  if (principal.kind !== 'org')
    throw new AuthError(
      'FORBIDDEN',
      'uploads belong to an organization: use an organization API key with the admin role, not the admin token',
    );
  if (principal.role !== 'admin')
    throw new AuthError('FORBIDDEN', 'uploading a plugin needs an organization API key with the admin role');
  return { organizationId: principal.organizationId, actor: `key:${principal.keyPrefix}` };
}

/** A manifest problem (`<file>: <JSON pointer> <message>`) as its parts; unparsed text stays the message. */
function problemOf(line: string): { file?: string; pointer?: string; message: string } {
  const m = /^(.+?): (\/\S*) (.*)$/s.exec(line);
  return m?.[1] && m[2] && m[3] !== undefined
    ? { file: m[1], pointer: m[2], message: m[3] }
    : { message: line };
}

/** @fastify/multipart and busboy errors (size, count, content type) as UPLOAD_INVALID; others undefined. */
function fromMultipartError(err: unknown, maxBytes: number): ValidationError | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (e.code === 'FST_REQ_FILE_TOO_LARGE')
    return new ValidationError(
      'UPLOAD_INVALID',
      `upload is larger than ${maxBytes} bytes (HAY_UPLOAD_MAX_BYTES)`,
    );
  if (e.code === 'FST_FILES_LIMIT')
    return new ValidationError('UPLOAD_INVALID', 'send exactly one file, in the field "file"');
  if (
    typeof e.statusCode === 'number' &&
    e.statusCode >= 400 &&
    e.statusCode < 500 &&
    typeof e.message === 'string'
  )
    return new ValidationError('UPLOAD_INVALID', e.message);
  return undefined;
}
