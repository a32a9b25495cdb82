import { describe, expect, it } from 'vitest';
import { expandDataDir, withDataDir } from '../../src/runtime/plugin-env.js';
import { buildBwrapInvocation, SANDBOX_DATA_DIR } from '../../src/runtime/sandbox/launch-args.js';

describe('${HAY_PLUGIN_DATA_DIR} in plugin environment values', () => {
  it('is replaced by the data folder wherever it appears, and HAY_PLUGIN_DATA_DIR is set', () => {
    expect(
      withDataDir(
        {
          MEMORY_FILE_PATH: '${HAY_PLUGIN_DATA_DIR}/memory.jsonl',
          PAIR: '${HAY_PLUGIN_DATA_DIR}:${HAY_PLUGIN_DATA_DIR}/b',
          OTHER: '$HOME/${config.x}',
        },
        '/data',
      ),
    ).toEqual({
      MEMORY_FILE_PATH: '/data/memory.jsonl',
      PAIR: '/data:/data/b',
      OTHER: '$HOME/${config.x}',
      HAY_PLUGIN_DATA_DIR: '/data',
    });
    expect(expandDataDir({ HAY_PLUGIN_DATA_DIR: '/srv/d', F: '${HAY_PLUGIN_DATA_DIR}/f' }).F).toBe(
      '/srv/d/f',
    );
    expect(expandDataDir({ F: '${HAY_PLUGIN_DATA_DIR}/f' }).F).toBe('${HAY_PLUGIN_DATA_DIR}/f');
  });

  it('names /data inside bubblewrap (the path the process can write)', () => {
    const inv = buildBwrapInvocation({
      spec: {
        orgId: 'o',
        pluginId: 'p',
        argv: ['node', 'server.js'],
        cwd: '/srv/plugins/core/p',
        env: {
          MEMORY_FILE_PATH: '${HAY_PLUGIN_DATA_DIR}/memory.jsonl',
          HAY_PLUGIN_DATA_DIR: '/srv/.hay/plugin-data/o/p',
        },
        limits: { memoryMb: 64, cpuPercent: 50, maxProcesses: 16, maxOpenFiles: 100 },
        network: { all: false, hosts: [] },
        readPaths: [],
      },
      identity: { kind: 'setpriv', setprivPath: '/usr/bin/setpriv' },
      uid: 65534,
      gid: 65534,
      rootEntries: [],
      readOnlyPaths: [],
      pluginReadPaths: [],
      hostDataDir: '/srv/.hay/plugin-data/o/p',
      shareNetwork: false,
      envPath: '/usr/bin/env',
    });
    const args = inv.argsFile.split('\0');
    const value = (name: string) => args[args.indexOf(name) + 1];
    expect(value('MEMORY_FILE_PATH')).toBe(`${SANDBOX_DATA_DIR}/memory.jsonl`);
    expect(value('HAY_PLUGIN_DATA_DIR')).toBe(SANDBOX_DATA_DIR);
  });
});
