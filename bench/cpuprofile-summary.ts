// `node dist/bench/cpuprofile-summary.js <file.cpuprofile> [fromUs toUs]`: where a V8 CPU profile (from
// `node --cpu-prof`) spends its time. Prints, over the samples between fromUs and toUs (the profile's own
// clock, the microseconds `profile-calls` prints as "profile window"; whole profile when omitted): self time
// per package (a node_modules package, `host` for this project's src/ and bench/, `node:` internals, or
// V8's (garbage collector)/(program)/(idle)), the top SUMMARY_TOP (30) functions by self time, and the top
// functions and packages by inclusive time (a sample counts once per function/package on its stack, so
// recursion is not counted twice). SUMMARY_TOP sets the length of each list; SUMMARY_CALLERS=<regex> adds the
// call stacks (up to 6 frames) under which functions matching the regex spend their self time.
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The package a script URL belongs to. */
export function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? '?');
  }
  const m = /\/dist\/(src|bench)\/([^/]+)/.exec(url) ?? /\/(src|bench)\/([^/]+)/.exec(url);
  if (m) return `host:${m[1]}/${m[2]?.replace(/\.js$/, '')}`;
  return url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const d = url.indexOf('/dist/');
  return d >= 0 ? url.slice(d + 6) : url.replace(/^file:\/\//, '');
}

function main(): void {
  const [file, fromArg, toArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpuprofile-summary <file.cpuprofile> [fromUs toUs]');
  const top = Number(process.env.SUMMARY_TOP ?? 30);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const from = fromArg === undefined ? -Infinity : Number(fromArg);
  const to = toArg === undefined ? Infinity : Number(toArg);

  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const fnKey = (n: ProfileNode) =>
    `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const pkgKey = (n: ProfileNode) => packageOf(n.callFrame.url, n.callFrame.functionName);

  const selfFn = new Map<string, number>();
  const selfPkg = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclPkg = new Map<string, number>();
  const callersOf = process.env.SUMMARY_CALLERS ? new RegExp(process.env.SUMMARY_CALLERS) : undefined;
  const callers = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // a sample's weight: the time until the next sample (V8 attributes the interval that way)
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t < from || t > to) continue;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    total += dt;
    add(selfFn, `[${pkgKey(node)}] ${fnKey(node)}`, dt);
    add(selfPkg, pkgKey(node), dt);
    if (callersOf?.test(fnKey(node))) {
      const stack: string[] = [];
      for (
        let n = byId.get(parent.get(node.id) ?? -1);
        n && stack.length < 6;
        n = byId.get(parent.get(n.id) ?? -1)
      )
        stack.push(fnKey(n));
      add(callers, `${fnKey(node)}\n      <- ${stack.join('\n      <- ')}`, dt);
    }
    const seenFn = new Set<string>();
    const seenPkg = new Set<string>();
    for (let n: ProfileNode | undefined = node; n; n = byId.get(parent.get(n.id) ?? -1)) {
      if (n.callFrame.functionName === '(root)') break;
      const f = fnKey(n);
      const p = pkgKey(n);
      if (!seenFn.has(f)) {
        seenFn.add(f);
        add(inclFn, f, dt);
      }
      if (!seenPkg.has(p)) {
        seenPkg.add(p);
        add(inclPkg, p, dt);
      }
    }
  }
  const pct = (v: number) => `${((100 * v) / total).toFixed(1).padStart(5)} %`;
  const print = (title: string, m: Map<string, number>, n: number) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n))
      console.log(`${pct(v)} ${(v / 1000).toFixed(1).padStart(9)} ms  ${k}`);
  };
  console.log(`${file}: ${(total / 1000).toFixed(1)} ms sampled in the window`);
  print('self time by package', selfPkg, top);
  print(`top ${top} functions by self time [package]`, selfFn, top);
  print('inclusive time by package', inclPkg, top);
  print(`top ${top} functions by inclusive time`, inclFn, top);
  if (callersOf) print(`stacks of ${callersOf.source}`, callers, 10);
}

main();
