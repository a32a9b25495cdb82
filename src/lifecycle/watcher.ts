import { watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { CHECKSUM_EXCLUDED_NAMES } from '../manifest/checksum.js';

export interface PluginWatcherOptions {
  /** Folders watched with everything below them (plugins/core, plugins/custom). */
  roots: readonly string[];
  logger: Logger;
  /** Quiet time after the last event before `onChange` runs. */
  debounceMs: number;
  /** Runs once per burst of changes (e.g. a registry scan); a burst during a run queues one more run. */
  onChange: () => Promise<void>;
  /** Directories watched at most (a bound on file descriptors); beyond it a warning is logged. */
  maxDirectories?: number;
}

/**
 * Watches plugin folders and calls `onChange` after a quiet period. Events cost nothing when nothing
 * changes (no polling). Where `fs.watch` supports `recursive` natively (macOS, Windows) one watcher per
 * root is used; elsewhere one per directory, skipping node_modules, dist and .git (install and build
 * output never triggers a reload).
 */
export class PluginWatcher {
  private readonly o: PluginWatcherOptions;
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private started = false;

  constructor(options: PluginWatcherOptions) {
    this.o = options;
  }

  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    const native = process.platform === 'darwin' || process.platform === 'win32';
    for (const root of this.o.roots) {
      if (native) this.add(root, true);
      else await this.addTree(root);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.running?.catch(() => undefined);
  }

  /** Directories currently watched (tests). */
  watchedCount(): number {
    return this.watchers.size;
  }

  private add(dir: string, recursive: boolean): void {
    if (this.closed || this.watchers.has(dir)) return;
    if (this.watchers.size >= (this.o.maxDirectories ?? 4096)) {
      this.o.logger.warn({ dir }, 'plugin watcher directory limit reached; changes below are not seen');
      return;
    }
    try {
      const w = watch(dir, { recursive, persistent: false }, (_event, name) => this.onEvent(dir, name));
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
        this.schedule();
      });
      this.watchers.set(dir, w);
    } catch {
      // vanished or unreadable: the parent's event reports it
    }
  }

  private async addTree(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    this.add(dir, false);
    for (const e of entries)
      if (e.isDirectory() && !CHECKSUM_EXCLUDED_NAMES.has(e.name)) await this.addTree(path.join(dir, e.name));
  }

  private onEvent(dir: string, name: string | Buffer | null): void {
    if (this.closed) return;
    const rel = name === null ? '' : name.toString();
    if (rel.split(/[\\/]/).some((s) => CHECKSUM_EXCLUDED_NAMES.has(s))) return;
    if (process.platform !== 'darwin' && process.platform !== 'win32' && rel !== '') {
      // a new directory needs its own watcher (addTree skips what is watched or not a directory)
      void this.addTree(path.join(dir, rel)).catch(() => undefined);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.o.debounceMs);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.o
      .onChange()
      .catch((err: unknown) => this.o.logger.error({ err }, 'plugin reload after a file change failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          this.schedule();
        }
      });
  }
}
