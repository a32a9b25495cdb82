import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PluginWatcher } from '../../src/lifecycle/watcher.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../helpers/processes.js';

const logger = createLogger({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tree() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'hay-watch-'));
  dirs.push(root);
  mkdirSync(path.join(root, 'core', 'a', 'src'), { recursive: true });
  mkdirSync(path.join(root, 'core', 'a', 'node_modules', 'dep'), { recursive: true });
  return root;
}

describe('plugin watcher', () => {
  it('one run per burst of changes, nested and new folders included; none for node_modules or dist', async () => {
    const root = tree();
    let runs = 0;
    const w = new PluginWatcher({
      roots: [path.join(root, 'core')],
      logger,
      debounceMs: 80,
      onChange: () => {
        runs++;
        return Promise.resolve();
      },
    });
    await w.start();
    // node_modules is not watched at all
    expect(w.watchedCount()).toBe(3);
    for (let i = 0; i < 5; i++) writeFileSync(path.join(root, 'core', 'a', 'src', `f${i}.js`), 'x');
    await waitFor(() => runs === 1, 'one run for the burst');
    writeFileSync(path.join(root, 'core', 'a', 'node_modules', 'dep', 'index.js'), 'x');
    mkdirSync(path.join(root, 'core', 'a', 'dist'));
    writeFileSync(path.join(root, 'core', 'a', 'dist', 'out.js'), 'x');
    await new Promise((r) => setTimeout(r, 300));
    expect(runs).toBe(1);
    mkdirSync(path.join(root, 'core', 'b'));
    await waitFor(() => runs === 2, 'a run for the new folder');
    await waitFor(() => w.watchedCount() === 4, 'the new folder watched');
    writeFileSync(path.join(root, 'core', 'b', 'manifest.json'), '{}');
    await waitFor(() => runs === 3, 'a run for a file in the new folder');
    await w.close();
    await w.close();
    expect(w.watchedCount()).toBe(0);
    writeFileSync(path.join(root, 'core', 'a', 'src', 'late.js'), 'x');
    await new Promise((r) => setTimeout(r, 300));
    expect(runs).toBe(3);
  });

  it('changes during a run queue exactly one more run', async () => {
    const root = tree();
    let runs = 0;
    let release: (() => void) | undefined;
    const w = new PluginWatcher({
      roots: [path.join(root, 'core')],
      logger,
      debounceMs: 30,
      onChange: () => {
        runs++;
        return new Promise<void>((r) => (release = r));
      },
    });
    await w.start();
    writeFileSync(path.join(root, 'core', 'a', 'x.js'), '1');
    await waitFor(() => runs === 1, 'first run');
    writeFileSync(path.join(root, 'core', 'a', 'x.js'), '2');
    writeFileSync(path.join(root, 'core', 'a', 'y.js'), '2');
    await new Promise((r) => setTimeout(r, 150));
    expect(runs).toBe(1);
    release?.();
    await waitFor(() => runs === 2, 'the queued run');
    release?.();
    await w.close();
  });
});
