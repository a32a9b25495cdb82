import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ManifestError } from '../../src/errors.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaPath = manifestSchemaPath(`${root}plugins`);
const FILE = 'plugins/core/x/manifest.json';

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(
    readFileSync(new URL(`../fixtures/manifests/${name}`, import.meta.url), 'utf8'),
  ) as Record<string, unknown>;
}

type Json = Record<string, unknown>;

/** The guide's test manifest, freshly read so each test can break it. */
function guide(): Json {
  return fixture('guide-test-plugin.json');
}

/** The capabilities.mcp object of a guide() copy, for editing in place. */
function mcp(m: Json): Json {
  return (m.capabilities as { mcp: Json }).mcp;
}

function tools(m: Json): Json[] {
  return mcp(m).tools as Json[];
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return (err as ManifestError).problems;
  }
  throw new Error('expected a ManifestError, but validation passed');
}

describe('ManifestValidator', () => {
  let validator: ManifestValidator;
  beforeAll(() => {
    validator = new ManifestValidator(schemaPath);
  });
  const invalid = (m: unknown): readonly string[] => problemsOf(() => validator.validate(m, FILE));

  it('accepts the guide test manifest unchanged and returns it', () => {
    const m = guide();
    const result = validator.validate(m, FILE);
    expect(result.id).toBe('hay-plugin-test');
    expect(result.capabilities?.mcp?.tools?.[0]?.name).toBe('echo');
    expect(result).toEqual(guide());
  });

  it('accepts a manifest using every field', () => {
    expect(validator.validate(fixture('every-field.json'), FILE).runtime?.limits?.memoryMb).toBe(256);
  });

  it('works with the schema passed as an object, and with a non-2020 schema', () => {
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    expect(new ManifestValidator(schema).validate(guide(), FILE).id).toBe('hay-plugin-test');
    const draft7 = new ManifestValidator({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'string' } },
    });
    expect(problemsOf(() => draft7.validate({}, FILE))).toEqual([
      `${FILE}: / is missing required property "id"`,
    ]);
  });

  it('refuses an unreadable or broken schema with ConfigError', () => {
    expect(() => new ManifestValidator(`${root}does-not-exist.json`)).toThrow(ConfigError);
    expect(() => new ManifestValidator({ type: 'object', properties: { a: { type: 'nonsense' } } })).toThrow(
      ConfigError,
    );
  });

  it('rejects a bad id', () => {
    const m = guide();
    m.id = 'Hay_Plugin';
    expect(invalid(m)).toEqual([`${FILE}: /id must match pattern "^[a-z0-9]+(-[a-z0-9]+)*$"`]);
    m.id = 'a'.repeat(101);
    expect(invalid(m)).toEqual([`${FILE}: /id must NOT have more than 100 characters`]);
  });

  it('rejects a version that is not semver', () => {
    const m = guide();
    m.version = '1.0';
    const [problem, ...rest] = invalid(m);
    expect(rest).toEqual([]);
    expect(problem).toMatch(new RegExp(`^${FILE}: /version must match pattern "\\^\\(0\\|`));
    m.version = '01.0.0';
    expect(invalid(m)).toHaveLength(1);
  });

  it('rejects unknown plugin types, empty and duplicate type lists', () => {
    const m = guide();
    m.type = ['mcp-connector', 'database'];
    expect(invalid(m)).toEqual([
      `${FILE}: /type/1 must be one of "channel", "mcp-connector", "retriever", "playbook", "workflow", "analytics" (got "database")`,
    ]);
    m.type = [];
    expect(invalid(m)).toEqual([`${FILE}: /type must NOT have fewer than 1 items`]);
    m.type = ['channel', 'channel'];
    expect(invalid(m)).toEqual([`${FILE}: /type must not contain duplicates (items 0 and 1 are equal)`]);
  });

  it('rejects a transport outside the pattern', () => {
    const m = guide();
    mcp(m).transport = 'stdio|grpc';
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp/transport must match pattern "^(stdio|sse|websocket|http)(\\|(stdio|sse|websocket|http))*$"`,
    ]);
    mcp(m).transport = 'http|sse';
    expect(validator.validate(m, FILE).capabilities?.mcp?.transport).toBe('http|sse');
  });

  it('names unknown properties at the top level and nested', () => {
    const m = guide();
    m.foo = 1;
    Object.assign(tools(m)[0] ?? {}, { inputSchema: {} });
    expect(invalid(m)).toEqual([
      `${FILE}: / has unknown property "foo"`,
      `${FILE}: /capabilities/mcp/tools/0 has unknown property "inputSchema"`,
    ]);
  });

  it('names a missing required top-level property', () => {
    const m = guide();
    delete m.version;
    expect(invalid(m)).toEqual([`${FILE}: / is missing required property "version"`]);
  });

  it('requires url for a remote connection', () => {
    const m = guide();
    mcp(m).connection = { type: 'remote' };
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp/connection is missing required property "url" (required when type is "remote")`,
    ]);
    mcp(m).connection = { type: 'remote', url: 'not a url' };
    expect(invalid(m)).toEqual([`${FILE}: /capabilities/mcp/connection/url must match format "uri"`]);
  });

  it('requires startCommand for a local connection', () => {
    const m = guide();
    delete mcp(m).startCommand;
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp is missing required property "startCommand" (required when connection.type is "local": the host starts the server with startCommand)`,
    ]);
  });

  it('rejects platform APIs that do not exist', () => {
    const m = guide();
    m.permissions = { api: ['email', 'sms'] };
    expect(invalid(m)).toEqual([`${FILE}: /permissions/api/1 must be one of "email", "events" (got "sms")`]);
  });

  it('rejects bad configSchema entries', () => {
    const m = guide();
    m.configSchema = {
      apiKey: { type: 'password' },
      region: { type: 'select' },
      count: { type: 'number', secret: true },
      'bad name': { type: 'string' },
    };
    expect(invalid(m)).toEqual([
      `${FILE}: /configSchema has invalid property name "bad name": must match pattern "^[A-Za-z_][A-Za-z0-9_-]*$"`,
      `${FILE}: /configSchema/apiKey/type must be one of "string", "number", "boolean", "url", "select" (got "password")`,
      `${FILE}: /configSchema/region is missing required property "options" (required when type is "select")`,
      `${FILE}: /configSchema/count has unknown property "secret"`,
    ]);
  });

  it('rejects malformed environment variable names', () => {
    const m = guide();
    m.configSchema = { apiKey: { type: 'string', env: 'api-key' } };
    m.permissions = { env: ['lower'] };
    expect(invalid(m)).toEqual([
      `${FILE}: /permissions/env/0 must match pattern "^[A-Z_][A-Z0-9_]*$"`,
      `${FILE}: /configSchema/apiKey/env must match pattern "^[A-Z_][A-Z0-9_]*$"`,
    ]);
  });

  it('rejects reserved environment variable names', () => {
    for (const name of ['PATH', 'HOME', 'NODE_OPTIONS', 'LD_PRELOAD', 'HAY_ENCRYPTION_KEY']) {
      const m = guide();
      m.configSchema = { value: { type: 'string', env: name } };
      expect(invalid(m)).toEqual([
        `${FILE}: /configSchema/value/env uses the reserved environment variable name "${name}" (PATH, HOME, NODE_OPTIONS, NODE_PATH, LD_*/DYLD_* loader variables and names starting with HAY_ are set by the host); choose another name`,
      ]);
    }
    const m = guide();
    m.permissions = { env: ['HTTPS_PROXY', 'HAY_ADMIN_TOKEN'] };
    expect(invalid(m)).toEqual([
      expect.stringMatching(new RegExp(`^${FILE}: /permissions/env/1 uses the reserved`)),
    ]);
  });

  it('rejects two config fields injected as the same variable', () => {
    const m = guide();
    m.configSchema = { a: { type: 'string', env: 'TOKEN' }, b: { type: 'string', env: 'TOKEN' } };
    expect(invalid(m)).toEqual([
      `${FILE}: /configSchema/b/env "TOKEN" is already used by configSchema field "a"`,
    ]);
  });

  it('rejects duplicate tool names', () => {
    const m = guide();
    tools(m).push({ name: 'other' }, { name: 'echo' });
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp/tools/2/name duplicates tool name "echo" (already declared at /capabilities/mcp/tools/0/name)`,
    ]);
  });

  it('rejects a default whose type does not match the field type', () => {
    const m = guide();
    m.configSchema = {
      timeout: { type: 'number', default: '30' },
      enabled: { type: 'boolean', default: 1 },
      name: { type: 'string', default: false },
      mode: { type: 'select', options: ['a', 'b'], default: 'c' },
      site: { type: 'url', default: 'example.com' },
    };
    expect(invalid(m)).toEqual([
      `${FILE}: /configSchema/timeout/default must be a number because the field type is "number" (got "30")`,
      `${FILE}: /configSchema/enabled/default must be a boolean because the field type is "boolean" (got 1)`,
      `${FILE}: /configSchema/name/default must be a string because the field type is "string" (got false)`,
      `${FILE}: /configSchema/mode/default must be one of the field's options ("a", "b")`,
      `${FILE}: /configSchema/site/default must be an absolute URL because the field type is "url" (got "example.com")`,
    ]);
  });

  it('rejects commands that need a shell', () => {
    const m = guide();
    mcp(m).startCommand = 'node index.js | tee log';
    mcp(m).installCommand = 'npm ci && npm run build';
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp/startCommand must not use the shell operator "|": commands run without a shell; give one program and its arguments (put pipelines or sequences in a script and run that)`,
      `${FILE}: /capabilities/mcp/installCommand must not use the shell operator "&&": commands run without a shell; give one program and its arguments (put pipelines or sequences in a script and run that)`,
    ]);
  });

  it('rejects header references to undeclared config fields and self-dependencies', () => {
    const m = guide();
    mcp(m).connection = {
      type: 'remote',
      url: 'https://x.example.com',
      headers: { Authorization: 'Bearer ${config.token}' },
    };
    mcp(m).transport = 'http|sse';
    m.dependencies = { 'hay-plugin-test': '^1.0.0' };
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/mcp/connection/headers/Authorization references \${config.token} but configSchema has no field "token"`,
      `${FILE}: /dependencies/hay-plugin-test a plugin cannot depend on itself`,
    ]);
  });

  it('rejects a local server without startCommand and a remote one with only stdio', () => {
    const noStart = guide();
    delete mcp(noStart).connection;
    delete mcp(noStart).startCommand;
    mcp(noStart).transport = 'stdio';
    expect(invalid(noStart)).toEqual([
      expect.stringMatching(
        /^.*: \/capabilities\/mcp declares a local stdio server but no startCommand, so the host has nothing to start/,
      ),
    ]);
    const remote = guide();
    mcp(remote).connection = { type: 'remote', url: 'https://x.example.com/mcp' };
    mcp(remote).transport = 'stdio';
    expect(invalid(remote)).toEqual([
      expect.stringMatching(/\/capabilities\/mcp\/transport a remote server needs a network transport/),
    ]);
  });

  it('rejects duplicate inbound routes and a route secret naming no config field', () => {
    const m = guide();
    (m.capabilities as Record<string, unknown>).api = {
      routes: [
        { method: 'POST', path: '/in', handler: 'h' },
        { method: 'POST', path: '/in', handler: 'h', auth: { scheme: 'token', secretConfigField: 'nope' } },
      ],
    };
    expect(invalid(m)).toEqual([
      `${FILE}: /capabilities/api/routes/1 duplicates route POST /in (already declared at /capabilities/api/routes/0)`,
      `${FILE}: /capabilities/api/routes/1/auth/secretConfigField names "nope" but configSchema has no such field`,
    ]);
  });

  it('reports every schema problem at once and nothing for the root type', () => {
    expect(invalid('nope')).toEqual([`${FILE}: / must be object`]);
    const m = guide();
    m.id = 'X';
    m.version = 'latest';
    m.extra = true;
    expect(invalid(m)).toHaveLength(3);
  });

  it('does not modify its input', () => {
    const m = guide();
    const before = JSON.stringify(m);
    validator.validate(m, FILE);
    expect(JSON.stringify(m)).toBe(before);
  });

  describe('parse', () => {
    it('parses and validates text, ignoring a BOM', () => {
      const text = readFileSync(
        new URL('../fixtures/manifests/guide-test-plugin.json', import.meta.url),
        'utf8',
      );
      expect(validator.parse(`\uFEFF${text}`, FILE).name).toBe('Test Plugin');
    });

    it('names line, column and cause of invalid JSON', () => {
      expect(problemsOf(() => validator.parse('{\n  "id": "x",\n}', FILE))).toEqual([
        `${FILE}: invalid JSON at line 3, column 1 (offset 15): trailing comma before "}"`,
      ]);
      expect(problemsOf(() => validator.parse('{"id": x}', FILE))).toEqual([
        `${FILE}: invalid JSON at line 1, column 8 (offset 7): unexpected "x"`,
      ]);
      expect(problemsOf(() => validator.parse('{"id": "a"', FILE))).toEqual([
        `${FILE}: invalid JSON at line 1, column 11 (offset 10): expected "," or "}" but found end of input`,
      ]);
      expect(problemsOf(() => validator.parse('', FILE))).toEqual([
        `${FILE}: invalid JSON at line 1, column 1 (offset 0): unexpected end of input`,
      ]);
      expect(problemsOf(() => validator.parse('{} {}', FILE))).toEqual([
        `${FILE}: invalid JSON at line 1, column 4 (offset 3): unexpected "{" after the end of the JSON value`,
      ]);
    });

    it('reports schema problems of parsed text', () => {
      expect(
        problemsOf(() => validator.parse('{"id":"x","name":"X","version":"1.0.0","type":[]}', FILE)),
      ).toEqual([`${FILE}: /type must NOT have fewer than 1 items`]);
    });
  });
});

describe('the manifest schema against its meta-schema', () => {
  it('the bundled schema is valid draft 2020-12 (the host skips this check at start for that file)', async () => {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    const ajv = new Ajv2020({ strict: false });
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('any other schema is still checked against the meta-schema', () => {
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    const broken = {
      ...schema,
      properties: { ...(schema.properties as object), type: { type: 'array', minItems: -1 } },
    };
    expect(() => new ManifestValidator(broken)).toThrow(ConfigError);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-schema-'));
    try {
      const file = path.join(dir, 'plugin-manifest.schema.json');
      writeFileSync(file, JSON.stringify(broken));
      expect(() => new ManifestValidator(file)).toThrow(/cannot compile the manifest schema/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
