import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import { ManifestError } from '../../src/errors.js';
import { ManifestValidator, manifestSchemaPath } from '../../src/manifest/validator.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ceilings = {
  memoryMb: DEFAULTS.manifestMaxMemoryMb,
  cpuPercent: DEFAULTS.manifestMaxCpuPercent,
  maxProcesses: DEFAULTS.manifestMaxProcesses,
  maxOpenFiles: DEFAULTS.manifestMaxOpenFiles,
  maxConcurrentInstances: DEFAULTS.manifestMaxConcurrentInstances,
  idleTimeoutMs: DEFAULTS.manifestMaxIdleTimeoutMs,
  rateLimitPerMinute: DEFAULTS.manifestMaxRateLimitPerMinute,
  warmInstances: DEFAULTS.manifestMaxWarmInstances,
};
const validator = new ManifestValidator(manifestSchemaPath(`${root}plugins`), ceilings);

const manifest = (runtime: Record<string, unknown>) => ({
  id: 'greedy',
  name: 'Greedy',
  version: '1.0.0',
  type: ['mcp-connector'],
  capabilities: { mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node s.mjs' } },
  runtime,
});

function problems(runtime: Record<string, unknown>): readonly string[] {
  try {
    validator.validate(manifest(runtime), 'manifest.json');
    return [];
  } catch (err) {
    if (err instanceof ManifestError) return err.problems;
    throw err;
  }
}

describe('operator ceilings on manifest runtime limits (issue 9)', () => {
  it('memoryMb: 1000000 is refused naming the ceiling and its variable', () => {
    expect(problems({ limits: { memoryMb: 1_000_000 } })).toEqual([
      `manifest.json: /runtime/limits/memoryMb is 1000000, above this host's ceiling of ${ceilings.memoryMb} (HAY_MANIFEST_MAX_MEMORY_MB); ask the operator or lower it`,
    ]);
  });

  it('every runtime limit has a ceiling', () => {
    const found = problems({
      warmInstances: 100,
      maxConcurrentInstances: 10_000,
      idleTimeoutMs: 10 * 24 * 3600_000,
      rateLimitPerMinute: 10_000_000,
      limits: { memoryMb: 1_000_000, cpuPercent: 10_000, maxProcesses: 100_000, maxOpenFiles: 1_000_000 },
    });
    expect(found.map((p) => p.split(' ')[1])).toEqual([
      '/runtime/limits/memoryMb',
      '/runtime/limits/cpuPercent',
      '/runtime/limits/maxProcesses',
      '/runtime/limits/maxOpenFiles',
      '/runtime/maxConcurrentInstances',
      '/runtime/idleTimeoutMs',
      '/runtime/rateLimitPerMinute',
      '/runtime/warmInstances',
    ]);
    expect(found.every((p) => /ceiling of \d+ \(HAY_MANIFEST_MAX_[A-Z_]+\)/.test(p))).toBe(true);
  });

  it('values at the ceiling pass', () => {
    expect(
      problems({
        warmInstances: ceilings.warmInstances,
        limits: { memoryMb: ceilings.memoryMb, cpuPercent: ceilings.cpuPercent },
      }),
    ).toEqual([]);
  });
});
