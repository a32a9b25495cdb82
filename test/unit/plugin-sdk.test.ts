import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  definePlugin,
  platformClient,
  readConfig,
  type ConfigValues,
  type PlatformApis,
} from '../../packages/plugin-sdk/src/index.js';

const config = {
  greeting: { type: 'string', env: 'G', default: 'Hello' },
  retries: { type: 'number', env: 'R', required: true },
  verbose: { type: 'boolean', env: 'V' },
  region: { type: 'select', env: 'REGION', options: ['eu', 'us'] },
} as const;

describe('@hay/plugin-sdk configuration', () => {
  it('types follow the configSchema: required/default present, others optional, select a union', () => {
    type Values = ConfigValues<typeof config>;
    expectTypeOf<Values['greeting']>().toEqualTypeOf<string>();
    expectTypeOf<Values['retries']>().toEqualTypeOf<number>();
    expectTypeOf<Values['verbose']>().toEqualTypeOf<boolean | undefined>();
    expectTypeOf<Values['region']>().toEqualTypeOf<'eu' | 'us' | undefined>();
  });

  it('reads the values from the environment the host sets, naming bad fields', () => {
    expect(readConfig(config, { R: '3', V: 'true', REGION: 'eu' })).toEqual({
      greeting: 'Hello',
      retries: 3,
      verbose: true,
      region: 'eu',
    });
    expect(() => readConfig(config, {})).toThrow('configuration field "retries" (R) is required but not set');
    expect(() => readConfig(config, { R: 'x' })).toThrow('"retries" (R) is not a number');
    expect(() => readConfig(config, { R: '1', REGION: 'mars' })).toThrow('must be one of eu, us');
  });
});

describe('@hay/plugin-sdk platform client', () => {
  it('offers exactly the declared APIs', () => {
    const none = platformClient([], {});
    expectTypeOf(none).toEqualTypeOf<Pick<PlatformApis, never>>();
    expect(Object.keys(none)).toEqual([]);
    const email = platformClient(['email'], {});
    expectTypeOf(email.email.send).toBeFunction();
    expect(Object.keys(email)).toEqual(['email']);
  });

  it('fails clearly outside a host', async () => {
    await expect(
      platformClient(['email'], {}).email.send({ to: 'a@b.c', subject: 's', text: 't' }),
    ).rejects.toThrow(/HAY_API_URL \/ HAY_API_TOKEN are not set/);
  });
});

describe('definePlugin', () => {
  it('collects tools, refuses duplicates and types handler arguments and ctx.config', () => {
    const plugin = definePlugin({ name: 'p', version: '1.0.0', config }).tool(
      'x',
      { input: {} },
      (_args, ctx) => {
        expectTypeOf(ctx.config.retries).toEqualTypeOf<number>();
        return 'ok';
      },
    );
    expect(plugin.toolNames()).toEqual(['x']);
    expect(() => plugin.tool('x', { input: {} }, () => 'again')).toThrow('tool "x" is defined twice');
    expect(() => plugin.createServer({})).toThrow(/"retries" \(R\) is required/);
  });
});
