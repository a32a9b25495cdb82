import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { redactHostPaths } from '../../src/invocation/sanitize.js';
import { StderrBudget } from '../../src/runtime/process/stderr-budget.js';
import { TENANT_PATH } from '../../src/runtime/plugin-env.js';
import { tenantInstallEnv } from '../../src/runtime/sandbox/wiring.js';

describe('redactHostPaths', () => {
  const paths = { pluginDir: '/srv/hay/plugins/custom/org/p', hostPaths: ['/srv/hay/data', '/root'] };

  it('shows the plugin folder as "." and every other host path and ancestor as <host>', () => {
    const text = [
      'cat: /srv/hay/data/admin-token: No such file or directory',
      'PATH=/srv/hay/plugins/custom/org/p/node_modules/.bin:/srv/hay/plugins/custom/node_modules/.bin:/root/.cargo/bin',
      'at /srv/hay/plugins/custom/org/p/build.js:3',
    ].join('\n');
    expect(redactHostPaths(text, paths)).toBe(
      [
        'cat: <host>/admin-token: No such file or directory',
        'PATH=./node_modules/.bin:<host>/node_modules/.bin:<host>/.cargo/bin',
        'at ./build.js:3',
      ].join('\n'),
    );
  });

  it('replaces whole path segments only and drops control characters', () => {
    expect(redactHostPaths('/rootless /root\u001b[31m', paths)).toBe('/rootless <host>[31m');
  });
});

describe('StderrBudget', () => {
  it('logs up to the budget, counts the rest and reports them before the next logged line', () => {
    let now = 0;
    const reports: number[] = [];
    const b = new StderrBudget({ linesPerMinute: 60, now: () => now, report: (n) => reports.push(n) });
    let logged = 0;
    for (let i = 0; i < 100; i++) if (b.take()) logged++;
    expect(logged).toBe(60);
    expect(reports).toEqual([]);
    now += 1_000; // one line per second refills
    expect(b.take()).toBe(true);
    expect(reports).toEqual([40]);
  });

  it('reports while a flood goes on, at most every reportEveryMs, and on flush', () => {
    let now = 0;
    const reports: number[] = [];
    const b = new StderrBudget({
      linesPerMinute: 1,
      reportEveryMs: 10_000,
      now: () => now,
      report: (n) => reports.push(n),
    });
    expect(b.take()).toBe(true);
    for (let i = 0; i < 5; i++) expect(b.take()).toBe(false);
    now = 10_000;
    expect(b.take()).toBe(false);
    expect(reports).toEqual([6]);
    expect(b.take()).toBe(false);
    b.flush();
    expect(reports).toEqual([6, 1]);
    b.flush();
    expect(reports).toEqual([6, 1]);
  });
});

describe('tenant install environment', () => {
  it('is the allow-list plus the registry: no host PATH, no host npm_config_* (credentials), nothing else', () => {
    const env = tenantInstallEnv(
      {
        PATH: '/home/op/.cargo/bin:/usr/bin',
        LANG: 'C.UTF-8',
        HOME: '/home/op',
        npm_config__authToken: 'npm-secret',
        HTTPS_PROXY: 'http://proxy:3128',
        DATABASE_URL: 'postgres://x',
      },
      'https://registry.example/',
    );
    expect(env).toEqual({
      PATH: TENANT_PATH,
      LANG: 'C.UTF-8',
      HTTPS_PROXY: 'http://proxy:3128',
      npm_config_registry: 'https://registry.example/',
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    });
  });
});

describe('tenant sandbox configuration', () => {
  it('parses the opt-out, the read allow-list and the registry, naming the variable on bad values', () => {
    const cfg = loadConfig({
      HAY_ALLOW_UNSANDBOXED_TENANT_CODE: '1',
      HAY_FILESYSTEM_READ_ALLOW: '/srv/shared, /opt/data',
      HAY_NPM_REGISTRY: 'https://npm.internal/',
    });
    expect(cfg.allowUnsandboxedTenantCode).toBe(true);
    expect(cfg.filesystemReadAllow).toEqual(['/srv/shared', '/opt/data']);
    expect(cfg.npmRegistry).toBe('https://npm.internal/');
    expect(loadConfig({}).allowUnsandboxedTenantCode).toBe(false);
    expect(() => loadConfig({ HAY_ALLOW_UNSANDBOXED_TENANT_CODE: 'yes' })).toThrow(
      'HAY_ALLOW_UNSANDBOXED_TENANT_CODE must be 1, true, 0 or false; got "yes"',
    );
    expect(() => loadConfig({ HAY_FILESYSTEM_READ_ALLOW: 'relative/path' })).toThrow(
      'HAY_FILESYSTEM_READ_ALLOW entries must be absolute paths; got "relative/path"',
    );
    expect(() => loadConfig({ HAY_NPM_REGISTRY: 'ftp://x' })).toThrow(
      /HAY_NPM_REGISTRY must be an http\(s\) URL/,
    );
  });
});
