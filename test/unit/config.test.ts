import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('uses the documented defaults', () => {
    const c = loadConfig({}, []);
    expect([c.host, c.port, c.databaseUrl, c.idleTimeoutMs, c.queueTimeoutMs]).toEqual([
      '127.0.0.1',
      3000,
      undefined,
      300_000,
      30_000,
    ]);
    expect(c.dataDir).toBe(path.resolve('.hay'));
    expect(c.pluginsDir).toBe(path.resolve('plugins'));
    expect(c.defaultMaxConcurrentInstances).toBe(DEFAULTS.defaultMaxConcurrentInstances);
  });

  it('reads env, then flags win', () => {
    const c = loadConfig({ HAY_PORT: '4000', HAY_HOST: '0.0.0.0' }, [
      '--port',
      '5000',
      '--idle-timeout-ms=10',
    ]);
    expect([c.host, c.port, c.idleTimeoutMs]).toEqual(['0.0.0.0', 5000, 10]);
  });

  it.each([
    [{ HAY_PORT: 'abc' }, [], 'HAY_PORT must be a non-negative integer; got "abc"'],
    [{ HAY_PORT: '70000' }, [], 'HAY_PORT must be <= 65535; got 70000'],
    [{ HAY_SANDBOX: 'maybe' }, [], 'HAY_SANDBOX must be one of auto, strict, off; got "maybe"'],
    [{ DATABASE_URL: 'mysql://x' }, [], 'DATABASE_URL must start with postgres:// or postgresql://'],
    [{ HAY_MAX_CONCURRENT_INSTANCES: '0' }, [], 'HAY_MAX_CONCURRENT_INSTANCES must be >= 1; got 0'],
    [{}, ['--port', 'x'], '--port must be a non-negative integer; got "x"'],
    [{}, ['--nope', '1'], 'unknown flag --nope'],
    [{}, ['--port'], 'flag --port needs a value'],
  ])('rejects %j %j naming the variable', (env, argv, message) => {
    expect(() => loadConfig(env, argv)).toThrow(message);
  });
});
