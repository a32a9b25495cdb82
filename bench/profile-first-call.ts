// `node dist/bench/profile-first-call.js`: where the FIRST call of a new organization on an already-running
// shared instance spends its time, the bench's (g) against (c1). For PROFILE_ORGS new organizations (each
// created and enabled, then warmed as the bench does, all outside the timing) it times the first and the
// second `plugins.invokeTool` over tRPC and counts the database statements each issues, listing the
// statements of the first calls by their text. Counts are repeatable on a loaded machine where times are not.
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { PGlite } from '@electric-sql/pglite';
import { checkEcho, PLUGIN_ID, startBenchHost, unwrapTrpc } from './lib/host-fixture.js';
import { median } from './lib/stats.js';

const raw = process.env.PROFILE_ORGS;
const ORGS = raw === undefined || raw === '' ? 30 : Number(raw);
if (!Number.isInteger(ORGS) || ORGS < 1)
  throw new Error(`PROFILE_ORGS must be a positive integer; got "${raw}"`);
/** Warm calls of another organization between the new org's warmup and its first call (0 = as the bench). */
const BETWEEN = Number(process.env.PROFILE_BETWEEN ?? '0');
/** 1: restart the shared instance before the loop, as the bench's (f) cold starts leave it. */
const RESTART = process.env.PROFILE_RESTART === '1';
/** Idle milliseconds between the new org's warmup and its first call. */
const PAUSE_MS = Number(process.env.PROFILE_PAUSE_MS ?? '0');

let counting = false;
const statements = new Map<string, number>();
let statementCount = 0;
for (const method of ['query', 'exec', 'transaction'] as const) {
  const proto = PGlite.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method];
  if (!original) continue;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    if (counting) {
      statementCount++;
      const text = typeof args[0] === 'string' ? args[0].replace(/\s+/g, ' ').slice(0, 140) : method;
      statements.set(text, (statements.get(text) ?? 0) + 1);
    }
    return original.apply(this, args);
  };
}

// garbage collections (count and ms) that overlap the counted calls
let gcCount = 0;
let gcMs = 0;
new PerformanceObserver((list) => {
  if (!counting) return;
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

async function main(): Promise<void> {
  const h = await startBenchHost();
  try {
    const input = (m: string) => ({ pluginId: PLUGIN_ID, toolName: 'echo', arguments: { message: m } });
    const call = async (apiKey: string, m: string) => {
      const res = await h.http.post('/trpc/plugins.invokeTool', input(m), {
        authorization: `Bearer ${apiKey}`,
      });
      checkEcho(unwrapTrpc(res.body, 'plugins.invokeTool'), m);
    };
    // phase spans (ms) of the calls being counted: auth, invokeTool (the service), the instance's callTool
    const spans = new Map<string, number>();
    const span = <A extends unknown[], R>(name: string, target: object, method: string) => {
      const t = target as Record<string, (...args: A) => Promise<R>>;
      const original = t[method];
      if (!original) throw new Error(`no method ${method}`);
      const bound = original.bind(target);
      t[method] = async (...args: A): Promise<R> => {
        const t0 = performance.now();
        try {
          return await bound(...args);
        } finally {
          if (counting) spans.set(name, (spans.get(name) ?? 0) + performance.now() - t0);
        }
      };
    };
    span('auth', h.host.services.organizations, 'authenticate');
    span('invokeTool', h.host.services.plugins, 'invokeTool');
    span('instances.callTool', h.host.services.instances, 'callTool');
    const firstSpans: Record<string, number[]> = {};
    const secondSpans: Record<string, number[]> = {};
    const take = (into: Record<string, number[]>) => {
      for (const [k, v] of spans) (into[k] ??= []).push(v);
      spans.clear();
    };
    const base = await h.newOrgWithPlugin('profile-base');
    for (let i = 0; i < 500; i++) await call(base.apiKey, `w${i}`);
    if (RESTART) {
      const p = h.host.services.registry.get(base.organizationId, PLUGIN_ID);
      if (p) await h.host.services.instances.stopAllForPlugin(p.key, 'profile: restart');
      await call(base.apiKey, 'restarted');
    }
    const steady: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await call(base.apiKey, `s${i}`);
      if (i >= 100) steady.push(performance.now() - t0);
    }
    const first: number[] = [];
    const second: number[] = [];
    const warm: number[] = [];
    const controlFront: number[] = [];
    const firstFront: number[] = [];
    const firstAfterControl: number[] = [];
    let firstStatements = 0;
    let firstGc = 0;
    let firstGcMs = 0;
    let secondStatements = 0;
    for (let i = 0; i < ORGS; i++) {
      const o = await h.newOrgWithPlugin(`first-${i}`);
      const p = h.host.services.registry.get(o.organizationId, PLUGIN_ID);
      const spec = p && h.host.services.registry.toSpec(p);
      if (!p || !spec) throw new Error('test plugin not registered');
      await h.host.services.warmup.warm(o.organizationId, spec);
      for (let j = 0; j < BETWEEN; j++) await call(base.apiKey, `b${j}`);
      if (PAUSE_MS > 0) await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      let t0 = performance.now();
      if (BETWEEN > 0) {
        await call(base.apiKey, 'warm');
        warm.push(performance.now() - t0);
      }
      // odd rounds: an already-warm organization's call takes the position right after the setup (the control)
      if (i % 2 === 1) {
        t0 = performance.now();
        await call(base.apiKey, 'control');
        controlFront.push(performance.now() - t0);
      }
      statementCount = 0;
      gcCount = 0;
      gcMs = 0;
      counting = true;
      t0 = performance.now();
      await call(o.apiKey, 'first');
      (i % 2 === 1 ? firstAfterControl : firstFront).push(performance.now() - t0);
      first.push(performance.now() - t0);
      firstStatements += statementCount;
      counting = false;
      await new Promise((resolve) => setImmediate(resolve));
      firstGc += gcCount;
      firstGcMs += gcMs;
      take(firstSpans);
      const firstList = new Map(statements);
      statements.clear();
      statementCount = 0;
      counting = true;
      t0 = performance.now();
      await call(o.apiKey, 'second');
      second.push(performance.now() - t0);
      counting = false;
      take(secondSpans);
      secondStatements += statementCount;
      statements.clear();
      for (const [k, v] of firstList) statements.set(`first: ${k}`, v);
      if (i === ORGS - 1)
        for (const [k, v] of firstList) process.stdout.write(`  first-call statement x${v}: ${k}\n`);
      statements.clear();
    }
    const r = (x: number) => Math.round(x * 1000) / 1000;
    process.stdout.write(
      `${JSON.stringify({
        loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
        orgs: ORGS,
        firstMsMedian: r(median(first)),
        secondMsMedian: r(median(second)),
        firstRightAfterSetupMsMedian: r(median(firstFront)),
        controlRightAfterSetupMsMedian: r(median(controlFront)),
        firstAfterControlMsMedian: r(median(firstAfterControl)),
        warmMsMedian: warm.length > 0 ? r(median(warm)) : null,
        steadyMsMedian: r(median(steady)),
        firstOverSteady: r(median(first) / median(steady)),
        dbStatementsPerFirstCall: r(firstStatements / ORGS),
        dbStatementsPerSecondCall: r(secondStatements / ORGS),
        gcPerFirstCall: r(firstGc / ORGS),
        gcMsPerFirstCall: r(firstGcMs / ORGS),
        firstSpansMsMedian: Object.fromEntries(Object.entries(firstSpans).map(([k, v]) => [k, r(median(v))])),
        secondSpansMsMedian: Object.fromEntries(
          Object.entries(secondSpans).map(([k, v]) => [k, r(median(v))]),
        ),
      })}\n`,
    );
  } finally {
    await h.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
