#!/usr/bin/env node
/**
 * Packet-space engine benchmark (issue 3, section 5).
 *
 * For each shape (kube-proxy, hand-written firewall, adversarial; src/lab/engine-generator.ts) and size (1k, 10k,
 * 100k rules) it generates a ruleset, then in fresh child processes (parse not timed, median of several runs, each
 * child killed after --timeout seconds and recorded as a timeout):
 *
 * - unreach:  createPacketSpace + compileRuleset + the full unreachable-rule analysis; peak RSS.
 *   baseline: pairwise rule-by-rule comparison within each chain (is the rule covered by ONE earlier rule: what
 *             Capirca does), stopped after --budget seconds and extrapolated to all pairs when quadratic.
 * - diff:     two versions at --diff-size rules differing in 1% of rules (engine-generator's mutate): space over
 *             both + compile both + diff.
 *   baseline: per-packet sampling with the tracer (src/firewall/tracer.ts) on both versions for --budget seconds:
 *             packets per second, differences found, and the samples a 1-in-a-million difference needs.
 * - reach:    after compiling --reach-size rules (not timed), several reach queries, each timed alone.
 *
 * Usage: npm run build && node bench/engine-bench.mjs [--shapes kube-proxy,firewall,adversarial]
 *          [--sizes 1000,10000,100000] [--runs 5] [--runs-large 3] [--seed 42] [--timeout 120] [--budget 10]
 *          [--only unreach,diff,reach] [--no-baseline]
 *        node bench/engine-bench.mjs --profile unreach|diff|reach --shape S --size N   (one child under --cpu-prof,
 *          prints where the time goes: self time by function, and GC)
 *        [--engine-dist OTHER_CHECKOUT/dist --tag before]   (measure another build on the same inputs)
 *        node bench/engine-bench.mjs --render bench/out/engine-results.json   (the markdown tables of a saved run)
 * Writes inputs, bench/out/engine-results.json and engine-results.md (bench/out is gitignored).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
// --engine-dist DIR: the children measure another build (the before of a before/after: an older checkout's dist/)
// on the inputs this build generates; --tag NAME keeps that run's results apart (engine-results-NAME.json).
let dist = join(root, 'dist');
const outDir = join(here, 'out');

/** Issue 19's targets (2-core machine). */
const TARGETS = {
  unreach10k: 1000,
  unreach100k: 10000,
  diff10k: 300,
  /** Median over the queries; the whole-space query ({}) separately. */
  reach10k: 50,
  reachWhole10k: 1000,
  rss100kMiB: 1024,
};
/** Batfish PR #2080: line reachability of one long ACL took 497 s before the fix. */
const BATFISH_ACL_SECONDS = 497;
/** Samples needed to see, with 95% confidence, a difference that covers 1 packet in a million. */
const P_DIFF = 1e-6;
const SAMPLES_FOR_1E6 = Math.ceil(Math.log(0.05) / Math.log(1 - P_DIFF));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const flag = (name) => process.argv.includes(`--${name}`);
const mod = (rel) => import(pathToFileURL(join(dist, rel)).href);

// ---------------------------------------------------------------------------------------------------------------
// Engine adapter: the engine and the queries are written in parallel with this harness, so their entry points are
// found by name and a missing one is reported instead of crashing.

async function tryImport(rel) {
  if (!existsSync(join(dist, rel))) return undefined;
  return mod(rel);
}

async function loadEngine() {
  const missing = [];
  const index = await tryImport('analysis/index.js');
  const unreachable = await tryImport('analysis/unreachable.js');
  const diff = await tryImport('analysis/diff.js');
  const reach = await tryImport('analysis/reach.js');
  const incremental = await tryImport('analysis/incremental.js');
  const flow = await tryImport('analysis/flow-spec.js');
  const pick = (m, names) => {
    for (const n of names) if (m && typeof m[n] === 'function') return m[n];
    return undefined;
  };
  const api = {
    createPacketSpace: pick(index, ['createPacketSpace']),
    compileRuleset: pick(index, ['compileRuleset']),
    unreachable:
      pick(unreachable, ['findUnreachable', 'unreachableRules', 'findUnreachableRules', 'unreachable']) ??
      pick(index, ['unreachableRules', 'findUnreachableRules', 'findUnreachable']),
    diff:
      pick(diff, ['diffCompiled', 'diffRulesets', 'semanticDiff', 'diff']) ??
      pick(index, ['diffRulesets', 'semanticDiff']),
    reach: pick(reach, ['reach', 'reachQuery', 'queryReach']) ?? pick(index, ['reach', 'reachQuery']),
    parseFlowSpec: pick(flow, ['parseFlowSpec']),
    diffRulesets: pick(incremental, ['diffRulesets']),
    flowSet: pick(flow, ['flowSet']),
    modules: { index, unreachable, diff, reach },
  };
  for (const k of ['createPacketSpace', 'compileRuleset', 'unreachable', 'diff', 'reach']) if (!api[k]) missing.push(k);
  api.missing = missing;
  return api;
}

function exportsOf(m) {
  return m ? Object.keys(m).filter((k) => typeof m[k] === 'function') : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Child: one measurement, printed as one JSON line on stdout.

async function child(job) {
  if (job.dist) dist = resolve(job.dist);
  const { parseRuleset } = await mod('firewall/parse.js');
  const read = (file) => parseRuleset(readFileSync(file, 'utf8'), file, { format: job.format });
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const out = { mode: job.mode };
  const rs = read(job.file);
  out.rules = countRules(rs);
  switch (job.mode) {
    case 'unreach': {
      const e = await loadEngine();
      need(e, ['createPacketSpace', 'compileRuleset', 'unreachable']);
      const t0 = now();
      const space = e.createPacketSpace([rs], { collectGarbage: true });
      const compiled = e.compileRuleset(rs, { hook: job.hook, space });
      const t1 = now();
      const result = await callUnreachable(e, compiled);
      const t2 = now();
      Object.assign(out, {
        compileMs: t1 - t0,
        analysisMs: t2 - t1,
        ms: t2 - t0,
        reachableRules: compiled.rules().length,
        found: summarizeUnreachable(result),
        bdd: space.stats?.(),
      });
      // Cross-check (not timed): every rule the single-rule comparison proves unreachable, the engine must report too.
      const { hookPath } = await mod('firewall/tracer.js');
      const pw = new Set();
      pairwise(rs, 30_000, new Set(hookPath(job.hook)), pw);
      const engineFound = new Set((result?.unreachable ?? []).map((u) => u.ref.rule));
      const missed = [...pw].filter((r) => !engineFound.has(r));
      Object.assign(out, {
        crossCheck: {
          pairwiseFound: pw.size,
          missedByEngine: missed.length,
          examples: missed.slice(0, 3).map((r) => r.text),
        },
      });
      break;
    }
    case 'pairwise': {
      const { hookPath } = await mod('firewall/tracer.js');
      const t0 = now();
      const r = pairwise(rs, job.budgetMs, new Set(hookPath(job.hook)));
      Object.assign(out, { ...r, ms: now() - t0 });
      break;
    }
    case 'diff': {
      const e = await loadEngine();
      need(e, ['createPacketSpace', 'compileRuleset', 'diff']);
      const rs2 = read(job.file2);
      out.rules2 = countRules(rs2);
      const t0 = now();
      const result = await callDiff(e, rs, rs2, job.hook);
      const t1 = now();
      Object.assign(out, { ms: t1 - t0, found: summarizeDiff(result) });
      // How big the difference is among IPv4 packets (what the sampler draws), for the sampling baseline; not timed.
      const changed = result?.changed;
      if (changed?.count && e.flowSet && e.parseFlowSpec) {
        const v4 = e.flowSet(changed.space, e.parseFlowSpec({ family: 'ipv4' }));
        const all = v4.count();
        const part = changed.and(v4).count();
        out.changedPackets = part;
        out.changedFraction = Number((part * 10n ** 18n) / all) / 1e18;
      }
      break;
    }
    case 'sample': {
      const { trace } = await mod('firewall/tracer.js');
      const rs2 = read(job.file2);
      Object.assign(out, sample(trace, rs, rs2, job.hook, job.budgetMs, job.seed));
      break;
    }
    case 'reach': {
      const e = await loadEngine();
      need(e, ['createPacketSpace', 'compileRuleset']);
      const t0 = now();
      const space = e.createPacketSpace([rs], { collectGarbage: true });
      const compiled = e.compileRuleset(rs, { hook: job.hook, space });
      out.compileMs = now() - t0;
      const queries = REACH_QUERIES[job.shape] ?? REACH_QUERIES.default;
      out.queries = [];
      // One warm-up query: the first call pays for lazily built tables (not what a user's second query sees).
      await callReach(e, compiled, space, queries[0]);
      for (const q of queries) {
        const ts = [];
        let summary;
        for (let i = 0; i < 3; i++) {
          const a = now();
          const r = await callReach(e, compiled, space, q);
          ts.push(now() - a);
          summary = summarizeReach(r);
        }
        out.queries.push({ query: q, ms: median(ts), summary });
      }
      out.via = e.reach ? 'reach.ts' : 'flowSet + decisions (reach.ts missing)';
      out.ms = median(out.queries.map((q) => q.ms));
      break;
    }
    default:
      throw new Error(`unknown mode ${job.mode}`);
  }
  out.maxRssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
}

function need(e, names) {
  const miss = names.filter((n) => !e[n]);
  if (miss.length) {
    const ex = Object.fromEntries(Object.entries(e.modules).map(([k, m]) => [k, exportsOf(m) ?? 'absent']));
    throw new Error(`engine not available yet: missing ${miss.join(', ')}; exports seen: ${JSON.stringify(ex)}`);
  }
}

function countRules(rs) {
  let n = 0;
  for (const t of rs.tables) for (const c of t.chains) n += c.rules.length;
  return n;
}

// The query modules' signatures (src/analysis/*.ts) take compiled rulesets; these wrappers
// adapt to what is exported.
async function callUnreachable(e, compiled) {
  return e.unreachable(compiled);
}

async function callDiff(e, a, b, hook) {
  const space = e.createPacketSpace([a, b], { collectGarbage: true });
  // What `rampart diff` runs: the incremental diff where the build has it.
  if (e.diffRulesets) return e.diffRulesets(a, b, { hook, space });
  const ca = e.compileRuleset(a, { hook, space });
  const cb = e.compileRuleset(b, { hook, space });
  return e.diff(ca, cb);
}

async function callReach(e, compiled, space, q) {
  if (e.reach) return e.reach(compiled, e.parseFlowSpec ? e.parseFlowSpec(q) : q);
  // Fallback: the same question through the engine primitives.
  const set = e.flowSet(space, e.parseFlowSpec(q));
  const decisions = compiled.decisions(set);
  return decisions.map((d) => ({ verdict: d.verdict, example: d.packets.example(), cubes: d.packets.cubes(8) }));
}

function summarizeUnreachable(r) {
  const list = Array.isArray(r) ? r : (r?.unreachable ?? r?.rules ?? r?.findings ?? []);
  const by = {};
  for (const f of list) {
    const k = f.class ?? f.kind ?? 'unreachable';
    by[k] = (by[k] ?? 0) + 1;
  }
  return { total: list.length, by, rulesChecked: r?.rulesChecked, neverEntered: r?.neverEntered?.length };
}

function summarizeDiff(r) {
  const groups = r?.groups ?? (Array.isArray(r) ? r : (r?.changes ?? []));
  return {
    groups: groups.length,
    flows: groups.reduce((k, g) => k + (g.flows?.length ?? 0), 0),
    pairs: groups.map((g) => `${g.from}->${g.to}`),
  };
}

function summarizeReach(r) {
  const o = r?.outcomes;
  if (!o) return { flows: Array.isArray(r) ? r.length : undefined };
  return Object.fromEntries(Object.entries(o).map(([k, d]) => [k, d?.flows?.length ?? 0]));
}

const REACH_QUERIES = {
  default: [
    { proto: 'tcp', dport: '22' },
    { from: '10.0.0.0/8', proto: 'tcp', dport: '443' },
    { to: '192.0.2.0/24', proto: 'tcp', dport: '80,443' },
    { proto: 'udp', dport: '53' },
    { from: '203.0.113.7', to: '10.96.0.10', proto: 'tcp', dport: '1-65535' },
    {},
  ],
};

// ---------------------------------------------------------------------------------------------------------------
// Baseline 1: pairwise single-rule cover (Capirca's approach), per chain, first-match order.

const FINAL = new Set(['accept', 'drop', 'reject']);

/** Per rule: field -> {op, values (merged ranges / names / symbols), mask}; or undefined when it cannot cover. */
function normalize(rule) {
  const fields = new Map();
  let canCover = true;
  for (const m of rule.matches) {
    if (m.kind !== 'field') {
      // An opaque or concat match makes the rule match less: it can still be covered, but it cannot cover.
      canCover = false;
      continue;
    }
    const key = m.mask === undefined ? m.field : `${m.field}&${m.mask}`;
    const list = fields.get(key) ?? [];
    list.push({ op: m.op, values: m.values });
    fields.set(key, list);
  }
  return { fields, canCover };
}

function elemIn(b, as) {
  for (const a of as) {
    if (a.kind !== b.kind) continue;
    if (a.kind === 'range' && a.lo <= b.lo && b.hi <= a.hi) return true;
    if (a.kind === 'symbol' && a.value === b.value) return true;
    if (a.kind === 'name') {
      if (!a.wildcard && !b.wildcard && a.value === b.value) return true;
      if (a.wildcard && b.value.startsWith(a.value)) return true;
    }
  }
  return false;
}

function elemsOverlap(b, as) {
  for (const a of as) {
    if (a.kind !== b.kind) continue;
    if (a.kind === 'range' && a.lo <= b.hi && b.lo <= a.hi) return true;
    if (a.kind === 'symbol' && a.value === b.value) return true;
    if (
      a.kind === 'name' &&
      (a.value === b.value ||
        (a.wildcard && b.value.startsWith(a.value)) ||
        (b.wildcard && a.value.startsWith(b.value)))
    )
      return true;
  }
  return false;
}

/** Whether B's constraint on one field implies A's (one element at a time: no merging, as a pairwise tool does). */
function implies(bList, a) {
  for (const b of bList ?? []) {
    if (a.op === 'eq' && b.op === 'eq' && b.values.every((v) => elemIn(v, a.values))) return true;
    if (a.op === 'ne' && b.op === 'eq' && b.values.every((v) => !elemsOverlap(v, a.values))) return true;
    if (a.op === 'ne' && b.op === 'ne' && a.values.every((v) => elemIn(v, b.values))) return true;
  }
  return false;
}

function covers(A, B) {
  if (!A.canCover) return false;
  for (const [key, aList] of A.fields) {
    const bList = B.fields.get(key);
    for (const a of aList) if (!implies(bList, a)) return false;
  }
  return true;
}

/**
 * The chains the engine analyses for the hook: base chains on the hook path and every chain they reach by jump, goto
 * or verdict map (same table), so both sides answer the same question.
 */
function chainsOnPath(rs, hooks) {
  const out = [];
  for (const t of rs.tables) {
    if (t.outOfScope) continue;
    const byName = new Map(t.chains.map((c) => [c.name, c]));
    const seen = new Set();
    const queue = t.chains.filter((c) => c.base && hooks.has(c.base.hook));
    while (queue.length) {
      const c = queue.shift();
      if (seen.has(c.name)) continue;
      seen.add(c.name);
      out.push(c);
      for (const r of c.rules) {
        const v = r.verdict;
        const targets = [];
        if (v?.kind === 'jump' || v?.kind === 'goto') targets.push(v.target);
        if (v?.kind === 'vmap') for (const e of v.entries) if (e.verdict.target) targets.push(e.verdict.target);
        for (const n of targets) if (byName.has(n) && !seen.has(n)) queue.push(byName.get(n));
      }
    }
  }
  return out;
}

function pairwise(rs, budgetMs, hooks, foundRules) {
  const t0 = Date.now();
  let comparisons = 0;
  let totalPairs = 0;
  let examinedRules = 0;
  let totalRules = 0;
  const by = { shadowed: 0, redundant: 0 };
  const chains = chainsOnPath(rs, hooks);
  for (const c of chains) {
    const n = c.rules.length;
    totalRules += n;
    totalPairs += (n * (n - 1)) / 2;
  }
  let stopped = false;
  outer: for (const c of chains) {
    const norm = c.rules.map(normalize);
    const verdict = c.rules.map((r) => (r.verdict && FINAL.has(r.verdict.kind) ? r.verdict.kind : undefined));
    for (let j = 0; j < norm.length; j++) {
      if ((j & 63) === 0 && Date.now() - t0 > budgetMs) {
        stopped = true;
        break outer;
      }
      examinedRules++;
      const B = norm[j];
      for (let i = 0; i < j; i++) {
        comparisons++;
        if (verdict[i] === undefined) continue;
        if (covers(norm[i], B)) {
          if (verdict[j] === undefined || verdict[j] === verdict[i]) by.redundant++;
          else by.shadowed++;
          foundRules?.add(c.rules[j]);
          break;
        }
      }
    }
  }
  const elapsed = Date.now() - t0;
  const out = { found: { total: by.shadowed + by.redundant, by }, comparisons, totalPairs, examinedRules, totalRules };
  if (stopped) {
    out.stopped = true;
    // Upper bound: every remaining pair compared at the measured cost per comparison.
    out.extrapolatedMs = (elapsed / Math.max(1, comparisons)) * totalPairs;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline 2: per-packet sampling with the tracer.

function sample(trace, a, b, hook, budgetMs, seed) {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const u32 = () => Math.floor(rand() * 4294967296);
  const ip = (x) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
  const ifs = ['eth0', 'eth1', 'wg0', 'lo', 'bond0.100'];
  const states = ['new', 'new', 'new', 'established', 'related', 'invalid'];
  const t0 = Date.now();
  let n = 0;
  let differ = 0;
  let example;
  while (Date.now() - t0 < budgetMs) {
    for (let k = 0; k < 64; k++) {
      const x = rand();
      const l4proto = x < 0.6 ? 6 : x < 0.9 ? 17 : 1;
      const p = {
        family: 'ipv4',
        iif: ifs[Math.floor(rand() * ifs.length)],
        saddr: ip(u32()),
        daddr: ip(u32()),
        l4proto,
        ...(l4proto === 1
          ? { icmpType: 8, icmpCode: 0 }
          : { sport: 1 + Math.floor(rand() * 65535), dport: 1 + Math.floor(rand() * 65535) }),
        ctState: states[Math.floor(rand() * states.length)],
      };
      const va = trace(a, p, { hook }).verdict;
      const vb = trace(b, p, { hook }).verdict;
      n++;
      if (va !== vb) {
        differ++;
        example ??= { packet: p, from: va, to: vb };
      }
    }
  }
  const ms = Date.now() - t0;
  const perSecond = (n / ms) * 1000;
  return {
    ms,
    samples: n,
    perSecond,
    differ,
    example,
    samplesFor1e6: SAMPLES_FOR_1E6,
    msFor1e6: (SAMPLES_FOR_1E6 / perSecond) * 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Parent

function runChild(job0, timeoutS, extraNodeArgs = []) {
  const engineDist = arg('engine-dist', undefined);
  const job = engineDist ? { ...job0, dist: engineDist } : job0;
  const r = spawnSync(
    process.execPath,
    [...extraNodeArgs, fileURLToPath(import.meta.url), '--child', JSON.stringify(job)],
    {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutS * 1000,
      killSignal: 'SIGKILL',
    },
  );
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL')
    return { timeout: true, error: `timeout after ${timeoutS} s` };
  if (r.status !== 0) {
    const last = r.stdout.trim().split('\n').pop();
    if (last?.startsWith('{"error"')) return JSON.parse(last);
    return { error: `child exited ${r.status}: ${r.stderr.trim().split('\n').slice(-4).join(' | ')}` };
  }
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function tagSuffix() {
  const t = arg('tag', undefined);
  return t ? `-${t}` : '';
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length === 0 ? undefined : v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function stats(values) {
  const v = values.filter((x) => typeof x === 'number');
  if (v.length === 0) return undefined;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Runs a job `runs` times; stops early on an error or timeout (a second timeout would only cost time). */
function repeat(job, runs, timeoutS) {
  const ok = [];
  let failure;
  for (let i = 0; i < runs; i++) {
    const r = runChild(job, timeoutS);
    if (r.error) {
      failure = r;
      break;
    }
    ok.push(r);
  }
  return { ok, failure };
}

const fmt = (x, d = 0) => (x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(d));
const fmtStats = (s, d = 0) => (s ? `${fmt(s.median, d)} (${fmt(s.min, d)}-${fmt(s.max, d)})` : '-');

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1] : cpus()[0]?.model;
  } catch {
    return cpus()[0]?.model;
  }
}

async function main() {
  if (!existsSync(join(dist, 'lab', 'engine-generator.js'))) {
    console.error('dist/ is missing or stale: run `npm run build` first');
    process.exit(2);
  }
  const gen = await mod('lab/engine-generator.js');
  if (flag('profile')) return profile(gen);
  // Re-render the RESULTS.md tables of an earlier run: --render bench/out/engine-results.json
  if (flag('render')) return void process.stdout.write(markdown(JSON.parse(readFileSync(arg('render'), 'utf8'))));
  const shapes = arg('shapes', gen.ENGINE_SHAPES.join(',')).split(',');
  const sizes = arg('sizes', '1000,10000,100000').split(',').map(Number);
  const runs = Number(arg('runs', '5'));
  const runsLarge = Number(arg('runs-large', '3'));
  const seed = Number(arg('seed', '42'));
  const timeoutS = Number(arg('timeout', '120'));
  const budgetMs = Number(arg('budget', '10')) * 1000;
  const diffSize = Number(arg('diff-size', '10000'));
  const reachSize = Number(arg('reach-size', '10000'));
  const only = new Set(arg('only', 'unreach,diff,reach').split(','));
  const baselines = !flag('no-baseline');
  // Each shape on the hook its rules work on (Docker's: forward), unless --hook says otherwise.
  const hookArg = arg('hook', undefined);
  const hookOf = (shape) => hookArg ?? gen.SHAPE_HOOKS?.[shape] ?? 'input';
  const hook = hookArg ?? 'per shape';
  mkdirSync(outDir, { recursive: true });

  const engine = await loadEngine();
  const machine = {
    nproc: cpus().length,
    cpu: cpuModel(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
  console.log(
    `engine-bench: shapes ${shapes.join(', ')}; sizes ${sizes.join(', ')}; ${runs} runs (${runsLarge} at 100k); seed ${seed}; hook ${hook}; timeout ${timeoutS} s; baseline budget ${budgetMs / 1000} s`,
  );
  console.log(
    `machine: ${machine.nproc} cpu, ${machine.cpu}, node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}`,
  );
  if (engine.missing.length)
    console.log(`engine: missing ${engine.missing.join(', ')} (those rows report "not available")`);
  console.log('');

  const files = new Map();
  const fileFor = (shape, n, version = 0) => {
    const format = gen.SHAPE_FORMATS[shape][0];
    const ext = format === 'nft-text' ? 'nft' : 'rules';
    const key = `${shape}-${n}-${version}`;
    if (!files.has(key)) {
      const file = join(outDir, `engine-${shape}-${n}${version ? `-v${version}` : ''}.${ext}`);
      const base = gen.generateEngineRuleset(shape, n, seed, format);
      writeFileSync(file, version ? gen.mutate(base, 0.01, seed + version) : base);
      files.set(key, { file, format });
    }
    return files.get(key);
  };

  const result = {
    date: new Date().toISOString(),
    machine,
    seed,
    runs,
    runsLarge,
    hook,
    timeoutS,
    budgetMs,
    command: `node ${process.argv.slice(1).join(' ')}`,
    targets: TARGETS,
    batfishAclSeconds: BATFISH_ACL_SECONDS,
    unreach: [],
    diff: [],
    reach: [],
  };
  const save = () =>
    writeFileSync(join(outDir, `engine-results${tagSuffix()}.json`), `${JSON.stringify(result, null, 2)}\n`);

  if (only.has('unreach')) {
    console.log('compile + unreachable-rule analysis (ms, median (min-max) of fresh children)');
    console.log(
      'shape         rules   compile        analysis       total              runs  RSS MiB  found (engine)            pairwise baseline ms       found (pairwise)  engine/pairwise',
    );
    for (const shape of shapes) {
      let timedOutAt;
      for (const n of sizes) {
        const { file, format } = fileFor(shape, n);
        const k = n >= 100_000 ? runsLarge : runs;
        // A size that timed out would only time out again ten times larger: skip the engine there (the baseline,
        // bounded by --budget, still runs).
        const skipped = timedOutAt !== undefined;
        const { ok, failure } = skipped
          ? { ok: [], failure: { error: `skipped: ${timedOutAt} rules already timed out` } }
          : repeat({ mode: 'unreach', file, format, hook: hookOf(shape), shape }, k, timeoutS);
        const row = {
          shape,
          rules: n,
          format,
          runs: ok.length,
          compileMs: stats(ok.map((r) => r.compileMs)),
          analysisMs: stats(ok.map((r) => r.analysisMs)),
          totalMs: stats(ok.map((r) => r.ms)),
          peakRssMiB: stats(ok.map((r) => r.maxRssMiB)),
          found: ok[0]?.found,
          bdd: ok[0]?.bdd,
          crossCheck: ok[0]?.crossCheck,
          ...(failure ? { error: failure.error, timeout: failure.timeout ?? false } : {}),
        };
        if (baselines) {
          const bk = n >= 100_000 ? 1 : Math.min(3, runs);
          const b = repeat(
            { mode: 'pairwise', file, format, hook: hookOf(shape), budgetMs },
            bk,
            timeoutS + budgetMs / 1000,
          );
          const pw = b.ok;
          row.pairwise = {
            runs: pw.length,
            ms: stats(pw.map((r) => r.ms)),
            stopped: pw[0]?.stopped ?? false,
            extrapolatedMs: stats(pw.map((r) => r.extrapolatedMs)),
            found: pw[0]?.found,
            examinedRules: pw[0]?.examinedRules,
            totalRules: pw[0]?.totalRules,
            ...(b.failure ? { error: b.failure.error } : {}),
          };
          const baseMs = row.pairwise.stopped ? row.pairwise.extrapolatedMs?.median : row.pairwise.ms?.median;
          // engine / baseline: how much more the exact multi-rule answer costs than the single-rule comparison.
          if (row.totalMs && baseMs) row.ratio = row.totalMs.median / baseMs;
        }
        const target = n === 10_000 ? TARGETS.unreach10k : n === 100_000 ? TARGETS.unreach100k : undefined;
        if (failure?.timeout) timedOutAt = n;
        if ((failure?.timeout || skipped) && target) row.meetsTarget = false;
        if (target && row.totalMs) row.meetsTarget = row.totalMs.median < target;
        if (n === 100_000 && row.peakRssMiB) row.meetsRss = row.peakRssMiB.max < TARGETS.rss100kMiB;
        result.unreach.push(row);
        save();
        if (row.crossCheck?.missedByEngine)
          console.log(
            `    CROSS-CHECK: the engine misses ${row.crossCheck.missedByEngine} rules the pairwise comparison proves unreachable, e.g. ${row.crossCheck.examples[0]}`,
          );
        const pw = row.pairwise;
        console.log(
          [
            shape.padEnd(12),
            String(n).padStart(6),
            fmtStats(row.compileMs).padStart(14),
            fmtStats(row.analysisMs).padStart(14),
            fmtStats(row.totalMs).padStart(18),
            String(row.runs).padStart(5),
            fmt(row.peakRssMiB?.max).padStart(8),
            ` ${row.found ? `${row.found.total} ${JSON.stringify(row.found.by)}` : '-'}`.padEnd(26),
            (pw ? (pw.stopped ? `~${fmt(pw.extrapolatedMs?.median)} (extrapolated)` : fmtStats(pw.ms)) : '-').padStart(
              26,
            ),
            (pw?.found
              ? `${pw.found.total}${pw.stopped ? ` in ${pw.examinedRules}/${pw.totalRules}` : ''}`
              : '-'
            ).padStart(17),
            (row.ratio ? `${fmt(row.ratio, 1)}x` : '-').padStart(7),
            row.meetsTarget === undefined ? '' : row.meetsTarget ? ' ok' : ' MISSED',
            row.meetsRss === false ? ' RSS MISSED' : '',
          ].join(' ') + (row.error ? `\n    ${row.error}` : ''),
        );
      }
    }
    console.log('');
  }

  if (only.has('diff')) {
    console.log(`diff of two ${diffSize}-rule versions differing in 1% of rules (engine: space + compile both + diff)`);
    console.log(
      'shape         rules   engine ms          runs  changes  RSS MiB   sampling pkt/s  differ/sampled   ms for 1e-6 (95%)   ratio',
    );
    for (const shape of shapes) {
      const a = fileFor(shape, diffSize);
      const b = fileFor(shape, diffSize, 1);
      const { ok, failure } = repeat(
        { mode: 'diff', file: a.file, file2: b.file, format: a.format, hook: hookOf(shape) },
        runs,
        timeoutS,
      );
      const row = {
        shape,
        rules: diffSize,
        runs: ok.length,
        ms: stats(ok.map((r) => r.ms)),
        peakRssMiB: stats(ok.map((r) => r.maxRssMiB)),
        found: ok[0]?.found,
        changedFraction: ok[0]?.changedFraction,
        changedPackets: ok[0]?.changedPackets,
        ...(failure ? { error: failure.error, timeout: failure.timeout ?? false } : {}),
      };
      if (baselines) {
        const s = runChild(
          { mode: 'sample', file: a.file, file2: b.file, format: a.format, hook: hookOf(shape), budgetMs, seed },
          timeoutS + budgetMs / 1000,
        );
        row.sampling = s;
        if (row.ms && s.msFor1e6) row.ratio = s.msFor1e6 / row.ms.median;
        // The same for the difference this mutation really made (from the engine's exact count).
        const f = row.changedFraction;
        if (f && f > 0 && f < 1 && s.perSecond) {
          s.samplesForActual = Math.ceil(Math.log(0.05) / Math.log1p(-f));
          s.msForActual = (s.samplesForActual / s.perSecond) * 1000;
        }
      }
      if (diffSize === 10_000 && row.ms) row.meetsTarget = row.ms.median < TARGETS.diff10k;
      result.diff.push(row);
      save();
      const s = row.sampling;
      console.log(
        [
          shape.padEnd(12),
          String(diffSize).padStart(6),
          fmtStats(row.ms).padStart(18),
          String(row.runs).padStart(5),
          String(row.found?.groups ?? '-').padStart(8),
          fmt(row.peakRssMiB?.max).padStart(8),
          (s?.perSecond ? fmt(s.perSecond) : '-').padStart(16),
          (s?.samples ? `${s.differ}/${s.samples}` : (s?.error ?? '-')).padStart(16),
          (s?.msFor1e6 ? fmt(s.msFor1e6) : '-').padStart(19),
          (row.ratio ? `${fmt(row.ratio, 0)}x` : '-').padStart(8),
          row.meetsTarget === undefined ? '' : row.meetsTarget ? ' ok' : ' MISSED',
        ].join(' ') + (row.error ? `\n    ${row.error}` : ''),
      );
    }
    console.log('');
  }

  if (only.has('reach')) {
    console.log(
      `reach queries on ${reachSize} rules after compile (each query: median of 3; row: median over queries)`,
    );
    console.log('shape         rules   compile ms   query ms median (min-max over queries)  runs   via');
    for (const shape of shapes) {
      const { file, format } = fileFor(shape, reachSize);
      const { ok, failure } = repeat(
        { mode: 'reach', file, format, hook: hookOf(shape), shape },
        Math.min(runs, 3),
        timeoutS,
      );
      const row = {
        shape,
        rules: reachSize,
        runs: ok.length,
        compileMs: stats(ok.map((r) => r.compileMs)),
        ms: stats(ok.map((r) => r.ms)),
        perQuery: ok[0]?.queries,
        worstQueryMs: stats(ok.map((r) => Math.max(...r.queries.map((q) => q.ms)))),
        // The whole space ({}): every verdict set described in full.
        wholeMs: stats(ok.map((r) => r.queries.find((q) => Object.keys(q.query).length === 0)?.ms)),
        // Median over the queries other than the whole space.
        partMs: stats(ok.map((r) => median(r.queries.filter((q) => Object.keys(q.query).length > 0).map((q) => q.ms)))),
        via: ok[0]?.via,
        ...(failure ? { error: failure.error, timeout: failure.timeout ?? false } : {}),
      };
      if (reachSize === 10_000 && row.ms)
        row.meetsTarget = row.partMs?.median < TARGETS.reach10k && (row.wholeMs?.median ?? 0) < TARGETS.reachWhole10k;
      result.reach.push(row);
      save();
      console.log(
        [
          shape.padEnd(12),
          String(reachSize).padStart(6),
          fmtStats(row.compileMs).padStart(12),
          `${fmt(row.partMs?.median, 1)} (whole space ${fmt(row.wholeMs?.median, 1)}, worst ${fmt(row.worstQueryMs?.median, 1)})`.padStart(
            40,
          ),
          String(row.runs).padStart(5),
          `  ${row.via ?? '-'}`,
          row.meetsTarget === undefined ? '' : row.meetsTarget ? ' ok' : ' MISSED',
        ].join(' ') + (row.error ? `\n    ${row.error}` : ''),
      );
    }
    console.log('');
  }
  result.loadavgAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
  save();
  writeFileSync(join(outDir, `engine-results${tagSuffix()}.md`), markdown(result));
  console.log(`wrote ${join(outDir, `engine-results${tagSuffix()}.md`)} (tables for RESULTS.md)`);
  console.log(
    `wrote ${join(outDir, `engine-results${tagSuffix()}.json`)} (load average at end ${result.loadavgAtEnd.join(' ')})`,
  );
}

/** The tables of RESULTS.md, from a result object. */
function markdown(r) {
  const L = [];
  const ms = (s) => (s ? `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})` : '-');
  const by = (f) =>
    f
      ? `${f.total} (${
          Object.entries(f.by)
            .map(([k, v]) => `${v} ${k}`)
            .join(', ') || 'none'
        })`
      : '-';
  const growth = (rows, get) => {
    const out = {};
    for (const row of rows) {
      const prev = rows.find((x) => x.shape === row.shape && x.rules * 10 === row.rules);
      if (prev && get(prev) && get(row)) out[`${row.shape}-${row.rules}`] = get(row) / get(prev);
    }
    return out;
  };
  if (r.unreach.length) {
    const g = growth(r.unreach, (x) => x.totalMs?.median);
    L.push(
      '| shape | rules | compile ms | analysis ms | total ms median (min-max) | runs | peak RSS MiB | BDD nodes | growth x10 rules | unreachable found | pairwise baseline ms | pairwise found | engine / pairwise time | target |',
    );
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | --- |');
    for (const x of r.unreach) {
      const pw = x.pairwise;
      const pwMs = pw
        ? pw.stopped
          ? `~${fmt(pw.extrapolatedMs?.median)} (extrapolated; stopped at ${fmt(pw.ms?.median)})`
          : ms(pw.ms)
        : '-';
      const pwFound = pw?.found
        ? `${by(pw.found)}${pw.stopped ? ` in the first ${pw.examinedRules} of ${pw.totalRules} rules` : ''}`
        : '-';
      const target = x.meetsTarget === undefined ? '' : x.meetsTarget ? 'met' : '**missed**';
      const rss = x.meetsRss === undefined ? '' : x.meetsRss ? '; RSS met' : '; RSS **missed**';
      const gx = g[`${x.shape}-${x.rules}`];
      // engine / pairwise, recomputed here so saved runs render the same way.
      const baseMs = pw?.stopped ? pw.extrapolatedMs?.median : pw?.ms?.median;
      const ratio = () => (x.totalMs && baseMs ? `${fmt(x.totalMs.median / baseMs, 1)}x` : '-');
      L.push(
        `| ${x.shape} | ${x.rules} | ${ms(x.compileMs)} | ${ms(x.analysisMs)} | ${x.error ? x.error.slice(0, 80) : ms(x.totalMs)} | ${x.runs} | ${fmt(x.peakRssMiB?.max)} | ${x.bdd?.nodes ?? '-'} | ${gx ? `${fmt(gx, 1)}x` : ''} | ${by(x.found)} | ${pwMs} | ${pwFound} | ${ratio(x)} | ${target}${rss} |`,
      );
    }
    L.push('');
  }
  if (r.diff.length) {
    L.push(
      '| shape | rules | engine ms median (min-max) | runs | peak RSS MiB | groups | changed fraction of packets | sampling pkt/s | differences found by sampling | sampling ms for a 1e-6 difference | sampling ms for this difference | sampling (1e-6) / engine | target |',
    );
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const x of r.diff) {
      const s = x.sampling;
      const target = x.meetsTarget === undefined ? '' : x.meetsTarget ? 'met' : '**missed**';
      L.push(
        `| ${x.shape} | ${x.rules} | ${x.error ? x.error.slice(0, 80) : ms(x.ms)} | ${x.runs} | ${fmt(x.peakRssMiB?.max)} | ${x.found?.groups ?? '-'} | ${x.changedFraction === undefined ? '-' : x.changedFraction.toExponential(2)} | ${fmt(s?.perSecond)} | ${s?.samples ? `${s.differ} of ${s.samples}` : '-'} | ${fmt(s?.msFor1e6)} | ${fmt(s?.msForActual)} | ${x.ratio ? `${fmt(x.ratio)}x` : '-'} | ${target} |`,
      );
    }
    L.push('');
  }
  if (r.reach.length) {
    L.push(
      '| shape | rules | compile ms | query ms: median over the five flow queries | whole space ({}) ms | slowest query ms | runs | target (50 ms / 1 s) |',
    );
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const x of r.reach) {
      const target = x.meetsTarget === undefined ? '' : x.meetsTarget ? 'met' : '**missed**';
      L.push(
        `| ${x.shape} | ${x.rules} | ${ms(x.compileMs)} | ${x.error ? x.error.slice(0, 80) : ms(x.partMs ?? x.ms)} | ${fmt(x.wholeMs?.median, 1)} | ${fmt(x.worstQueryMs?.median, 1)} | ${x.runs} | ${target} |`,
      );
    }
    L.push('');
  }
  return `${L.join('\n')}\n`;
}

/** One child under --cpu-prof; prints self time by function (top 25) and the share of GC. */
async function profile(gen) {
  const mode = arg('profile', 'unreach');
  const shape = arg('shape', 'adversarial');
  const n = Number(arg('size', '10000'));
  const seed = Number(arg('seed', '42'));
  const hook = arg('hook', gen.SHAPE_HOOKS?.[shape] ?? 'input');
  const timeoutS = Number(arg('timeout', '300'));
  const format = gen.SHAPE_FORMATS[shape][0];
  const ext = format === 'nft-text' ? 'nft' : 'rules';
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `engine-${shape}-${n}.${ext}`);
  const base = gen.generateEngineRuleset(shape, n, seed, format);
  writeFileSync(file, base);
  const file2 = join(outDir, `engine-${shape}-${n}-v1.${ext}`);
  writeFileSync(file2, gen.mutate(base, 0.01, seed + 1));
  const profDir = join(outDir, `prof-${mode}-${shape}-${n}`);
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const r = runChild({ mode, file, file2, format, hook, shape }, timeoutS, ['--cpu-prof', '--cpu-prof-dir', profDir]);
  console.log(`${mode} ${shape} ${n}: ${JSON.stringify(r).slice(0, 600)}`);
  const prof = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (prof.length === 0) return console.log('no profile written (child killed?)');
  const p = JSON.parse(readFileSync(join(profDir, prof[0]), 'utf8'));
  summarizeProfile(p);
  console.log(
    `profile: ${join(profDir, prof[0])} (${(statSync(join(profDir, prof[0])).size / 1e6).toFixed(1)} MB; open in Chrome DevTools)`,
  );
}

function summarizeProfile(p) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]);
    const d = (dt[i + 1] ?? 0) / 1000;
    total += d;
    const cf = node.callFrame;
    const where = cf.url ? `${cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`;
    self.set(key, (self.get(key) ?? 0) + d);
  }
  // Inclusive time per function: a sample counts once for every distinct function on its stack.
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const d = (dt[i + 1] ?? 0) / 1000;
    const seen = new Set();
    for (let id = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id).callFrame;
      if (!cf.url?.includes('/dist/')) continue;
      const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/dist\//, 'dist/')}:${cf.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + d);
    }
  }
  const top = (m, k) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k);
  console.log(`\nprofiled ${total.toFixed(0)} ms; self time, top 25:`);
  for (const [k, v] of top(self, 25))
    console.log(`  ${v.toFixed(0).padStart(7)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  console.log('\ninclusive time (dist/ functions), top 25:');
  for (const [k, v] of top(incl, 25))
    console.log(`  ${v.toFixed(0).padStart(7)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}

if (process.argv[2] === '--child') {
  try {
    await child(JSON.parse(process.argv[3]));
  } catch (e) {
    // One JSON line the parent can show, instead of a stack trace it would have to dig the message out of.
    process.stdout.write(
      `${JSON.stringify({ error: `${e?.name ?? 'Error'}: ${String(e?.message ?? e).slice(0, 400)}` })}\n`,
    );
    process.exitCode = 3;
  }
} else await main();
