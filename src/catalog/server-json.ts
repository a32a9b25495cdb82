import { z } from 'zod';

/**
 * The part of the official MCP Registry `server.json` format (ServerDetail, schema
 * https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json) the catalog reads. Unknown
 * fields are allowed (the format grows); every field read here is bounded. Hay's own listing hints live in
 * `_meta["chat.hay/marketplace"]` ({category, tags}), the format's reverse-DNS extension point.
 */
const text = (max: number) => z.string().max(max);
const url = z
  .string()
  .max(2000)
  .regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL');

export const inputSchema = z.looseObject({
  description: text(2000).optional(),
  isRequired: z.boolean().optional(),
  isSecret: z.boolean().optional(),
  format: z.enum(['string', 'number', 'boolean', 'filepath']).optional(),
  value: text(2000).optional(),
  default: text(2000).optional(),
  placeholder: text(500).optional(),
  choices: z.array(text(200)).max(100).optional(),
});
export type RegistryInput = z.infer<typeof inputSchema>;

const inputWithVariables = inputSchema.extend({
  variables: z.record(text(100), inputSchema).optional(),
});

export const keyValueInput = inputWithVariables.extend({ name: text(200).min(1) });
export type RegistryKeyValueInput = z.infer<typeof keyValueInput>;

export const argumentSchema = inputWithVariables.extend({
  type: z.enum(['positional', 'named']),
  name: text(200).optional(),
  valueHint: text(200).optional(),
  isRepeated: z.boolean().optional(),
});
export type RegistryArgument = z.infer<typeof argumentSchema>;

const urlTemplate = z
  .string()
  .max(2000)
  .regex(/^(https?:\/\/[^\s]+|\{[a-zA-Z_][a-zA-Z0-9_]*\}[^\s]*)$/, 'must be an http(s) URL template');

export const packageSchema = z.looseObject({
  registryType: text(50).min(1),
  registryBaseUrl: url.optional(),
  identifier: text(300).min(1),
  version: text(255).min(1).optional(),
  runtimeHint: text(50).optional(),
  transport: z.looseObject({
    type: z.enum(['stdio', 'streamable-http', 'sse']),
    url: urlTemplate.optional(),
    headers: z.array(keyValueInput).max(50).optional(),
  }),
  environmentVariables: z.array(keyValueInput).max(100).optional(),
  packageArguments: z.array(argumentSchema).max(50).optional(),
  runtimeArguments: z.array(argumentSchema).max(50).optional(),
  fileSha256: z
    .string()
    .regex(/^[a-f0-9]{64}$/)
    .optional(),
});
export type RegistryPackage = z.infer<typeof packageSchema>;

export const remoteSchema = z.looseObject({
  type: z.enum(['streamable-http', 'sse']),
  url: urlTemplate,
  headers: z.array(keyValueInput).max(50).optional(),
  variables: z.record(text(100), inputSchema).optional(),
});
export type RegistryRemote = z.infer<typeof remoteSchema>;

const marketplaceMeta = z.looseObject({
  category: text(100).optional(),
  tags: z.array(text(50)).max(30).optional(),
});

export const serverDetailSchema = z.looseObject({
  $schema: text(500).optional(),
  name: z
    .string()
    .min(3)
    .max(200)
    .regex(/^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/, 'must be a reverse-DNS name with one slash'),
  title: text(100).min(1).optional(),
  description: text(2000).min(1),
  version: text(255).min(1),
  websiteUrl: url.optional(),
  repository: z.looseObject({ url: url, source: text(50), subfolder: text(500).optional() }).optional(),
  icons: z
    .array(
      z.looseObject({
        src: z
          .string()
          .max(500)
          .regex(/^https:\/\/[^\s]+$/, 'icons must be https URLs'),
        mimeType: text(50).optional(),
        theme: z.enum(['light', 'dark']).optional(),
      }),
    )
    .max(20)
    .optional(),
  packages: z.array(packageSchema).max(20).optional(),
  remotes: z.array(remoteSchema).max(20).optional(),
  _meta: z
    .looseObject({
      'chat.hay/marketplace': marketplaceMeta.optional(),
      'io.modelcontextprotocol.registry/official': z
        .looseObject({ isLatest: z.boolean().optional(), status: text(50).optional() })
        .optional(),
    })
    .optional(),
});
export type ServerDetail = z.infer<typeof serverDetailSchema>;

/** One problem with one catalog entry (reported in logs; the entry is skipped). */
export interface EntryProblem {
  /** Where the entry came from: `bundled`, `file` or `url`, plus the file name within a directory. */
  source: string;
  /** The entry's position in its document (0-based) and its name when it had one. */
  index: number;
  name: string | undefined;
  message: string;
}

/**
 * The raw entries of one catalog document: a single server.json object, an array of them, or the
 * registry API's list answer (`{servers: [...]}` with items either ServerDetail or `{server, _meta}`).
 * Returns the items still unvalidated, or throws when the document has none of these shapes.
 */
export function documentItems(doc: unknown): unknown[] {
  const unwrap = (item: unknown): unknown => {
    if (item && typeof item === 'object' && 'server' in item && typeof item.server === 'object') {
      const wrapped = item as { server: Record<string, unknown>; _meta?: Record<string, unknown> };
      // the API puts registry metadata next to the server; keep it where server.json would have it
      return wrapped._meta
        ? { ...wrapped.server, _meta: { ...wrapped._meta, ...(wrapped.server._meta as object) } }
        : wrapped.server;
    }
    return item;
  };
  if (Array.isArray(doc)) return doc.map(unwrap);
  if (doc && typeof doc === 'object') {
    if ('servers' in doc && Array.isArray(doc.servers)) return doc.servers.map(unwrap);
    if ('name' in doc || 'server' in doc) return [unwrap(doc)];
  }
  throw new Error('not a server.json object, an array of them, or a registry list ({servers: [...]})');
}

/** Validates one item; returns the entry or a one-line reason naming the first bad fields. */
export function parseServerDetail(
  item: unknown,
): { ok: true; server: ServerDetail } | { ok: false; message: string } {
  const r = serverDetailSchema.safeParse(item);
  if (r.success) return { ok: true, server: r.data };
  const message = r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? `/${i.path.join('/')}` : '(root)'} ${i.message}`)
    .join('; ');
  return { ok: false, message };
}
