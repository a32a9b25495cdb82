/** Per (organization, plugin) call statistics for `plugins.metrics`, in memory since boot. */
export interface PluginMetrics {
  totalInvocations: number;
  /** Milliseconds. */
  averageLatency: number;
  /** Fraction of calls that failed or returned isError. */
  errorRate: number;
  activeInstances: number;
}

export class UsageStats {
  private readonly stats = new Map<string, { calls: number; errors: number; totalMs: number }>();

  record(orgId: string, pluginKey: string, ms: number, failed: boolean): void {
    const key = `${orgId}\u0000${pluginKey}`;
    let s = this.stats.get(key);
    if (!s) {
      s = { calls: 0, errors: 0, totalMs: 0 };
      this.stats.set(key, s);
    }
    s.calls++;
    s.totalMs += ms;
    if (failed) s.errors++;
  }

  get(orgId: string, pluginKey: string, activeInstances: number): PluginMetrics {
    const s = this.stats.get(`${orgId}\u0000${pluginKey}`);
    return {
      totalInvocations: s?.calls ?? 0,
      averageLatency: s && s.calls ? s.totalMs / s.calls : 0,
      errorRate: s && s.calls ? s.errors / s.calls : 0,
      activeInstances,
    };
  }
}
