import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/**
 * Tenant text with NUL against what stores it: jsonb and text columns refuse NUL, environment variables too.
 * Configuration strings become jsonb values and environment variables.
 */
let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({
    plugins: {
      'core/conf': toolkitPlugin('conf', {
        configSchema: {
          label: { type: 'string' },
          token: { type: 'string', encrypted: true, env: 'CONF_TOKEN' },
        },
      }),
    },
  });
});
afterAll(async () => {
  await t?.close();
  await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
});

it('a configuration string with NUL is refused naming the field; nothing is enabled', async () => {
  // found 2026-12-02: a plain field answered 500 INTERNAL (jsonb refused the value); an encrypted one was
  // stored, and every start then failed (an environment variable cannot hold NUL)
  const org = await t.createOrganization('nul');
  for (const configuration of [{ label: 'a\u0000b' }, { token: 'sec\u0000ret' }]) {
    const field = Object.keys(configuration)[0] ?? '';
    await expect(org.hay.plugins.enable.mutate({ pluginId: 'conf', configuration })).rejects.toMatchObject({
      data: { code: 'BAD_REQUEST', hayCode: 'CONFIGURATION_INVALID' },
      message: `configuration.${field} must not contain NUL characters`,
    });
  }
  expect((await org.hay.plugins.get.query({ pluginId: 'conf' })).enabled).toBe(false);
  await org.hay.plugins.enable.mutate({ pluginId: 'conf', configuration: { label: 'ok', token: 'fine' } });
  const result = await org.hay.plugins.invokeTool.mutate({
    pluginId: 'conf',
    toolName: 'echo',
    arguments: { message: 'up' },
  });
  expect(result.content).toEqual([{ type: 'text', text: 'up' }]);
});

it('a query filter with NUL is a validation error, not an internal one', async () => {
  // found 2026-12-02: the database refused the parameter and the caller got 500 INTERNAL_SERVER_ERROR
  const org = await t.createOrganization('filters');
  const invalid = { data: { code: 'BAD_REQUEST', hayCode: 'INPUT_INVALID' } };
  await expect(org.hay.audit.list.query({ action: 'tool.invoke\u0000' })).rejects.toMatchObject(invalid);
  await expect(org.hay.events.deliveries.query({ target: 'x\u0000' })).rejects.toMatchObject(invalid);
  expect((await org.hay.audit.list.query({ action: 'tool.invoke' })).entries).toEqual([]);
});

it('a tool call whose arguments hold NUL is audited, and so is every later entry', async () => {
  // the path of the audit-log bug found 2026-12-02 (test/integration/audit-log.test.ts): tool arguments go
  // into the tool.invoke row's details
  const org = await t.createOrganization('audited');
  await org.hay.plugins.enable.mutate({ pluginId: 'conf', configuration: { label: 'x', token: 'y' } });
  await org.hay.plugins.invokeTool.mutate({
    pluginId: 'conf',
    toolName: 'echo',
    arguments: { message: 'a\u0000b' },
  });
  await org.hay.plugins.invokeTool.mutate({
    pluginId: 'conf',
    toolName: 'echo',
    arguments: { message: 'c' },
  });
  const { entries } = await org.hay.audit.list.query({ action: 'tool.invoke' });
  expect(entries.map((e) => (e.details as { arguments: { message: string } }).arguments.message)).toEqual([
    'c',
    'a\ufffdb',
  ]);
});
