import { lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HostPackages } from '../../src/registry/host-packages.js';

const logger = pino({ level: 'silent' });
const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

function plugin(peers: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-peers-'));
  temps.push(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'p', peerDependencies: peers }));
  return dir;
}

const host = new HostPackages(
  [
    {
      name: '@modelcontextprotocol/sdk',
      version: '1.32.2',
      dir: '/opt/hay/node_modules/@modelcontextprotocol/sdk',
    },
    { name: 'zod', version: '4.6.7', dir: '/opt/hay/node_modules/zod' },
  ],
  logger,
);

describe('HostPackages.linkPeers', () => {
  it('links offered peers whose range the host satisfies, and nothing else', async () => {
    const dir = plugin({ '@modelcontextprotocol/sdk': '^1.32.0', zod: '^3.0.0', 'left-pad': '*' });
    const report = await host.linkPeers(dir);
    expect(report.linked).toEqual(['@modelcontextprotocol/sdk@1.32.2']);
    expect(report.skipped).toEqual([
      'zod: the host has 4.6.7, outside "^3.0.0"',
      'left-pad: not offered by the host',
    ]);
    const link = path.join(dir, 'node_modules', '@modelcontextprotocol', 'sdk');
    expect(readlinkSync(link)).toBe('/opt/hay/node_modules/@modelcontextprotocol/sdk');
    expect((await host.linkPeers(dir)).skipped).toContain(
      '@modelcontextprotocol/sdk: the plugin has its own copy',
    );
  });

  it('never writes through a symlinked node_modules (a plugin cannot aim the host elsewhere)', async () => {
    const dir = plugin({ zod: '^4.0.0' });
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'hay-elsewhere-'));
    temps.push(elsewhere);
    symlinkSync(elsewhere, path.join(dir, 'node_modules'));
    const report = await host.linkPeers(dir);
    expect(report).toEqual({ linked: [], skipped: ['zod: node_modules is not a plain folder'] });
    expect(() => lstatSync(path.join(elsewhere, 'zod'))).toThrow();
  });

  it('does nothing without a package.json or peers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hay-peers-'));
    temps.push(dir);
    expect(await host.linkPeers(dir)).toEqual({ linked: [], skipped: [] });
    mkdirSync(path.join(dir, 'x'));
    expect(await host.linkPeers(path.join(dir, 'x'))).toEqual({ linked: [], skipped: [] });
  });
});
