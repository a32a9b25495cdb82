import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependencyProblems } from '../../src/lifecycle/dependencies.js';
import { startTestHost, toolkitPlugin, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

const dep = (id: string, version: string, dependencies?: Record<string, string>, extra = {}) =>
  toolkitPlugin(id, { version, ...(dependencies ? { dependencies } : {}), ...extra });

describe('dependency validation at scan (unit)', () => {
  it('names unknown ids, bad ranges and every plugin on a cycle', () => {
    const problems = dependencyProblems([
      { pluginId: 'a', organizationId: null, dependencies: { b: '^1' } },
      { pluginId: 'b', organizationId: null, dependencies: { c: '*' } },
      { pluginId: 'c', organizationId: null, dependencies: { a: '*' } },
      { pluginId: 'd', organizationId: null, dependencies: { nope: '*' } },
      { pluginId: 'e', organizationId: null, dependencies: { a: 'abc' } },
      { pluginId: 'f', organizationId: 'org1', dependencies: { g: '*', e: '*' } },
      { pluginId: 'g', organizationId: 'org1', dependencies: {} },
      { pluginId: 'h', organizationId: null, dependencies: { g: '*' } },
      { pluginId: 'i', organizationId: 'org2', dependencies: { g: '*' } },
    ]);
    expect(problems.get(0)).toBe('dependency cycle: a -> b -> c -> a');
    expect(problems.get(1)).toMatch(/^dependency cycle: /);
    expect(problems.get(2)).toMatch(/^dependency cycle: /);
    expect(problems.get(3)).toBe(
      'dependency "nope" is not a known plugin (core plugins can depend on core plugins only)',
    );
    expect(problems.get(4)).toBe('dependency "a" has an invalid semver range "abc"');
    // a custom plugin may depend on its own organization's plugins and on core ones
    expect(problems.has(5)).toBe(false);
    expect(problems.has(6)).toBe(false);
    // a core plugin never depends on a custom one; another organization's plugin is unknown
    expect(problems.get(7)).toMatch(/"g" is not a known plugin/);
    expect(problems.get(8)).toBe('dependency "g" is not a known plugin');
  });
});

describe('dependency rules through the API', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await startTestHost({
      plugins: {
        'core/base-lib': dep('base-lib', '1.2.0'),
        'core/needs-base': dep('needs-base', '1.0.0', { 'base-lib': '^1.0.0' }),
        'core/needs-new-base': dep('needs-new-base', '1.0.0', { 'base-lib': '^2.0.0' }),
        'core/chain-a': dep('chain-a', '1.0.0', { 'chain-b': '>=1' }),
        'core/chain-b': dep('chain-b', '1.0.0', { 'base-lib': '1.x' }),
        'core/configured': dep('configured', '1.0.0', undefined, {
          configSchema: { token: { type: 'string', required: true } },
        }),
        'core/needs-configured': dep('needs-configured', '1.0.0', { configured: '*' }),
        'core/cyc-a': dep('cyc-a', '1.0.0', { 'cyc-b': '*' }),
        'core/cyc-b': dep('cyc-b', '1.0.0', { 'cyc-a': '*' }),
        'core/unknown-dep': dep('unknown-dep', '1.0.0', { 'not-here': '^1' }),
      },
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('records cycles and unknown ids as validation errors', async () => {
    const org = await h.createOrganization('scan');
    const get = (pluginId: string) => org.hay.plugins.get.query({ pluginId });
    expect(await get('cyc-a')).toMatchObject({
      status: 'invalid',
      error: 'dependency cycle: cyc-a -> cyc-b -> cyc-a',
    });
    expect(await get('cyc-b')).toMatchObject({ status: 'invalid' });
    expect(await get('unknown-dep')).toMatchObject({
      status: 'invalid',
      error: expect.stringContaining('dependency "not-here" is not a known plugin'),
    });
    expect(await get('needs-base')).toMatchObject({ status: 'ok' });
  });

  it('refuses enabling with a disabled dependency, naming it', async () => {
    const org = await h.createOrganization('missing');
    await expect(
      org.hay.plugins.enable.mutate({ pluginId: 'needs-base', configuration: {} }),
    ).rejects.toMatchObject({
      message:
        'plugin needs-base depends on base-lib (^1.0.0), which is not enabled for this organization; enable base-lib first or pass enableDependencies: true',
      data: { code: 'PRECONDITION_FAILED', hayCode: 'DEPENDENCY_UNSATISFIED' },
    });
    expect((await org.hay.plugins.get.query({ pluginId: 'needs-base' })).enabled).toBe(false);
    await org.hay.plugins.enable.mutate({ pluginId: 'base-lib', configuration: {} });
    await org.hay.plugins.enable.mutate({ pluginId: 'needs-base', configuration: {} });
    expect((await org.hay.plugins.get.query({ pluginId: 'needs-base' })).enabled).toBe(true);
  });

  it('refuses a dependency whose version is out of range, naming both', async () => {
    const org = await h.createOrganization('range');
    await org.hay.plugins.enable.mutate({ pluginId: 'base-lib', configuration: {} });
    await expect(
      org.hay.plugins.enable.mutate({
        pluginId: 'needs-new-base',
        configuration: {},
        enableDependencies: true,
      }),
    ).rejects.toMatchObject({
      message: 'plugin needs-new-base depends on base-lib ^2.0.0, but this organization runs base-lib 1.2.0',
      data: { hayCode: 'DEPENDENCY_UNSATISFIED' },
    });
  });

  it('enableDependencies enables the missing ones transitively, and disabling a dependency is refused', async () => {
    const org = await h.createOrganization('chain');
    await org.hay.plugins.enable.mutate({ pluginId: 'chain-a', configuration: {}, enableDependencies: true });
    const enabled = (await org.hay.plugins.list.query())
      .filter((p) => p.enabled)
      .map((p) => p.id)
      .sort();
    expect(enabled).toEqual(['base-lib', 'chain-a', 'chain-b']);
    await expect(org.hay.plugins.disable.mutate({ pluginId: 'base-lib' })).rejects.toMatchObject({
      message: 'plugin base-lib cannot be disabled: chain-b depends on it; disable it first',
      data: { code: 'PRECONDITION_FAILED', hayCode: 'HAS_DEPENDENTS' },
    });
    await expect(org.hay.plugins.disable.mutate({ pluginId: 'chain-b' })).rejects.toThrow(
      'plugin chain-b cannot be disabled: chain-a depends on it',
    );
    await org.hay.plugins.disable.mutate({ pluginId: 'chain-a' });
    await org.hay.plugins.disable.mutate({ pluginId: 'chain-b' });
    await org.hay.plugins.disable.mutate({ pluginId: 'base-lib' });
    const audit = await org.hay.audit.list.query({ action: 'plugin.enable' });
    expect(audit.entries.map((e) => e.pluginId).sort()).toEqual(['base-lib', 'chain-a', 'chain-b']);
  });

  it('a dependency that needs configuration is not enabled blindly', async () => {
    const org = await h.createOrganization('config');
    await expect(
      org.hay.plugins.enable.mutate({
        pluginId: 'needs-configured',
        configuration: {},
        enableDependencies: true,
      }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(
        /^plugin needs-configured needs configured, which could not be enabled: .*token/,
      ),
      data: { hayCode: 'DEPENDENCY_UNSATISFIED' },
    });
    expect((await org.hay.plugins.get.query({ pluginId: 'configured' })).enabled).toBe(false);
  });
});

describe('rolling a dependency back out of a dependent range', () => {
  let h: TestHost;
  beforeAll(async () => {
    h = await startTestHost({
      plugins: {
        'core/lib2': dep('lib2', '1.0.0'),
        'core/needs-lib2': dep('needs-lib2', '1.0.0', { lib2: '^2.0.0' }),
      },
      config: { hotReload: 'off' },
    });
  });
  afterAll(async () => {
    await h.close();
    await waitFor(() => descendantPids().length === 0, 'every plugin process to exit');
  });

  it('is refused naming the dependents, for one organization and for all', async () => {
    const org = await h.createOrganization('roll');
    await org.hay.plugins.enable.mutate({ pluginId: 'lib2', configuration: {} });
    await org.hay.plugins.invokeTool.mutate({
      pluginId: 'lib2',
      toolName: 'echo',
      arguments: { message: 'x' },
    });
    await waitFor(
      async () => (await org.hay.plugins.versions.query({ pluginId: 'lib2' })).versions.length === 1,
      'lib2 1.0.0 kept',
    );
    h.writePlugin('core/lib2', dep('lib2', '2.0.0'));
    await h.admin.admin.rescanPlugins.mutate();
    expect((await org.hay.plugins.versions.query({ pluginId: 'lib2' })).running).toBe('2.0.0');
    await org.hay.plugins.enable.mutate({ pluginId: 'needs-lib2', configuration: {} });

    await expect(
      org.hay.plugins.pinVersion.mutate({ pluginId: 'lib2', version: '1.0.0' }),
    ).rejects.toMatchObject({
      message: 'plugin lib2 cannot move to 1.0.0: needs-lib2 needs ^2.0.0',
      data: { code: 'PRECONDITION_FAILED', hayCode: 'HAS_DEPENDENTS' },
    });
    await expect(
      h.admin.admin.rollbackVersion.mutate({ pluginId: 'lib2', version: '1.0.0' }),
    ).rejects.toThrow('plugin lib2 cannot move to 1.0.0: needs-lib2 needs ^2.0.0');
    expect((await org.hay.plugins.versions.query({ pluginId: 'lib2' })).running).toBe('2.0.0');
    // without the dependent the rollback goes through
    await org.hay.plugins.disable.mutate({ pluginId: 'needs-lib2' });
    await org.hay.plugins.pinVersion.mutate({ pluginId: 'lib2', version: '1.0.0' });
    expect((await org.hay.plugins.versions.query({ pluginId: 'lib2' })).running).toBe('1.0.0');
    // and enabling the dependent now names the version this organization runs
    await expect(
      org.hay.plugins.enable.mutate({ pluginId: 'needs-lib2', configuration: {} }),
    ).rejects.toThrow('plugin needs-lib2 depends on lib2 ^2.0.0, but this organization runs lib2 1.0.0');
  });
});
