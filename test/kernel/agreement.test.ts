/**
 * Kernel agreement: Rampart's tracer must give the verdict the real Linux kernel gives, packet for packet.
 *
 * Each ruleset (every fixture, plus seeded random nft and iptables rulesets) is loaded into the firewall namespace
 * of a two-namespace lab; crafted probes are sent from the peer namespace; the kernel's verdict is read from its own
 * counters and replies (see kernel-lab.ts); ours comes from parsing the same ruleset and calling trace(). Besides the
 * text we loaded, the ruleset the kernel reports back (`nft -j list ruleset`, `iptables-save`) is parsed and traced
 * too, so the JSON and iptables-save parsers are checked on real tool output. See docs/kernel-agreement.md.
 *
 * Runs only as root with nft, ip and python3; otherwise it is skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRuleset, createPacketSpace } from '../../src/analysis/index.js';
import { includeFromDisk } from '../../src/firewall/load.js';
import type { FinalVerdict, Packet, Rule, Ruleset } from '../../src/firewall/model.js';
import { mergeRulesets } from '../../src/firewall/parse.js';
import { parseIptablesSave } from '../../src/firewall/parsers/iptables-save.js';
import { parseNftJson } from '../../src/firewall/parsers/nft-json.js';
import { parseNftText } from '../../src/firewall/parsers/nft-text.js';
import { type TraceResult, trace } from '../../src/firewall/tracer.js';
import {
  generateIptablesRuleset,
  generateNftRuleset,
  generateProbes,
  makePools,
  type Probe,
  rng,
} from '../../src/lab/generate.js';
import { createLab, type Lab, sweepStaleLabs } from '../../src/lab/netns.js';
import { CORPUS_DIR, type CorpusEntry, corpusEntries, expandedNftText, readCorpusEntry } from '../real-world.js';
import {
  flushFirewall,
  type KernelObservation,
  loadFirewall,
  observe,
  poolsFromText,
  type RulesetSource,
  type RunnerExecutor,
  resetRunner,
  setExtraLocal,
  stopSender,
  withRunner,
} from './kernel-lab.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures');

const NFT_RULESETS = Number(process.env.RAMPART_KT_NFT ?? 40);
const IPT_RULESETS = Number(process.env.RAMPART_KT_IPT ?? 20);
const PROBES_PER_RULESET = Number(process.env.RAMPART_KT_PROBES ?? 48);
const PROBES_PER_FIXTURE = 64;
const SEED_BASE =
  process.env.RAMPART_KT_SEED === 'random' ? Date.now() % 1_000_000 : Number(process.env.RAMPART_KT_SEED ?? 1);
const MIN_RULESETS = 50;
const MIN_PACKETS = 2000;
/**
 * Labs (pairs of namespaces) the fixtures, the corpus and the generated rulesets are spread over. Each lab is its own
 * kernel state (ruleset, conntrack, ipsets, routes), so rulesets on different labs cannot see each other; most of a
 * ruleset's time is spent waiting (nft, the sender's reply window), so a few labs keep two cores busy.
 */
const LABS = Math.max(1, Math.floor(Number(process.env.RAMPART_KT_LABS ?? 4)) || 1);

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root (needs network namespaces)';
  for (const tool of ['nft', 'ip', 'python3']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`]);
    if (r.status !== 0) return `${tool} not found`;
  }
  return undefined;
}
const SKIP = skipReason();
if (SKIP) console.warn(`kernel agreement suite skipped: ${SKIP}`);

// ---------------------------------------------------------------------------------------------------------------
// Bookkeeping

interface Stats {
  rulesets: number;
  rulesetsByKind: Record<string, number>;
  packets: number;
  comparisons: number;
  agree: number;
  /** Accept-vs-not compared only, because an output/postrouting chain could drop a reject's reply. */
  rejectUnobservable: number;
  excluded: Record<string, number>;
  kernel: Record<FinalVerdict, number>;
  /** The packet-space engine (what `rampart reach` answers from), checked on the same probes. */
  engine: { comparisons: number; agree: number; uncertain: number };
  /** Rulesets whose probes were sent in several batches, reloading in between (stateful matches). */
  batchedRulesets: number;
  /** Probes that did not reach fw's prerouting hook and were sent again (a slow or loaded lab). */
  labRetries: number;
  /** Probes that never reached fw's prerouting hook even after the retries: lab faults, not disagreements. */
  labFaults: number;
}
const stats: Stats = {
  rulesets: 0,
  rulesetsByKind: {},
  packets: 0,
  comparisons: 0,
  agree: 0,
  rejectUnobservable: 0,
  excluded: {},
  kernel: { accept: 0, drop: 0, reject: 0 },
  engine: { comparisons: 0, agree: 0, uncertain: 0 },
  batchedRulesets: 0,
  labRetries: 0,
  labFaults: 0,
};
const exclude = (why: string, n = 1): void => {
  stats.excluded[why] = (stats.excluded[why] ?? 0) + n;
};

/**
 * Splits probes so that no two of a batch reach the same stateful match with a known fresh outcome (as the tracer
 * sees them): each batch then meets every rate limit and recent list fresh, as the main verdict assumes.
 */
function statefulBatches(rs: Ruleset, probes: readonly Probe[]): Probe[][] {
  const batches: { used: Set<string>; probes: Probe[] }[] = [];
  for (const p of probes) {
    let keys: string[] = [];
    try {
      const t = trace(rs, toPacket(p), { hook: 'input' });
      // Only where the state could change the verdict (a log rule's limit does not).
      if ((t.alternatives ?? []).length === 0) keys = [];
      else
        keys = t.opaque
          .filter((o) => o.fresh !== undefined)
          .map((o) => `${o.rule.family} ${o.rule.table} ${o.rule.chain}#${o.rule.position} ${o.text}`);
    } catch {
      // compared (and reported) later
    }
    let b = batches.find((x) => keys.every((k) => !x.used.has(k)));
    if (!b) {
      b = { used: new Set(), probes: [] };
      batches.push(b);
    }
    for (const k of keys) b.used.add(k);
    b.probes.push(p);
  }
  return batches.map((b) => b.probes);
}

/** Unique source ports / ICMP ids for the whole run, so every probe is `ct state new` to conntrack. */
let sportCounter = 0;
const nextSport = (): number => 10_000 + (sportCounter++ % 55_000);

function toPacket(p: Probe): Packet {
  const base = {
    family: p.family,
    iif: p.link,
    saddr: p.saddr,
    daddr: p.daddr,
    l4proto: p.proto,
    ctState: 'new' as const,
  };
  if (p.proto === 1) return { ...base, icmpType: 8, icmpCode: 0 };
  if (p.proto === 58) return { ...base, icmpType: 128, icmpCode: 0 };
  return { ...base, sport: p.sport, ...(p.dport !== undefined ? { dport: p.dport } : {}) };
}

function describeProbe(p: Probe): string {
  const proto = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' }[p.proto];
  const ports = p.dport !== undefined ? ` sport ${p.sport} dport ${p.dport}` : ` echo-request id ${p.sport}`;
  return `iif ${p.link} ${p.family} ${p.saddr} -> ${p.daddr} ${proto}${ports}`;
}

function describePath(t: TraceResult): string {
  return t.path
    .map((s) => {
      if (s.kind === 'rule')
        return `    rule ${s.family} ${s.table} ${s.chain}#${s.position}: ${s.text} => ${s.effect}`;
      if (s.kind === 'chain')
        return `    chain ${s.family} ${s.table} ${s.chain} (${s.hook} ${s.priority}, policy ${s.policy})`;
      if (s.kind === 'policy') return `    policy ${s.family} ${s.table} ${s.chain}: ${s.policy}`;
      if (s.kind === 'rewrite') return `    rewrite ${s.field} ${s.from} -> ${s.to}`;
      if (s.kind === 'jump' || s.kind === 'goto' || s.kind === 'return') return `    ${s.kind} ${s.from} -> ${s.to}`;
      return `    ${s.kind} ${'chain' in s ? s.chain : ''}`;
    })
    .join('\n');
}

/** A reject's reply leaves through output and postrouting: a chain there that could drop hides reject vs drop. */
function replyMayBeFiltered(rs: Ruleset): boolean {
  return rs.tables.some(
    (t) =>
      !t.outOfScope &&
      t.chains.some(
        (c) =>
          c.base !== undefined &&
          (c.base.hook === 'output' || c.base.hook === 'postrouting') &&
          c.base.type !== 'nat' &&
          (c.base.policy === 'drop' || c.rules.length > 0),
      ),
  );
}

interface View {
  readonly name: string;
  readonly ruleset: Ruleset;
  /** What `nft -j list ruleset` printed, as opposed to our parse of what was loaded (always the first view). */
  readonly nftListing?: boolean;
}

const LISTING_LOST_NFPROTO = 'nft listing lost a condition (meta nfproto before reject with tcp reset, nft 1.0.6 bug)';

/**
 * Rules of an `nft -j list ruleset` parse that lost a condition the kernel still enforces, keyed like the tracer's
 * RuleRef (`family table chain#position`). nft 1.0.6 treats an explicit `meta nfproto` as a dependency of `reject
 * with tcp reset` and leaves it out of the listing, though the kernel's bytecode keeps it (`nft --debug=netlink`):
 * `meta nfproto ipv6 tcp dport 993 reject with tcp reset` lists as `tcp dport 993 reject with tcp reset`, which
 * then rejects IPv4 too. Found by pairing each listed rule with the loaded one at the same position: the loaded
 * rule has an nfproto match and a tcp-reset reject, the listed one the reject but no nfproto match.
 */
function listingLossyRules(listed: Ruleset, loaded: Ruleset): Set<string> {
  const out = new Set<string>();
  const tcpReset = (r: Rule): boolean => r.verdict?.kind === 'reject' && /^tcp[ -]reset$/.test(r.verdict.with ?? '');
  const hasNfproto = (r: Rule): boolean => r.matches.some((m) => m.kind === 'field' && m.field === 'nfproto');
  for (const lt of listed.tables) {
    const tt = loaded.tables.find((t) => t.family === lt.family && t.name === lt.name);
    for (const lc of lt.chains) {
      const tc = tt?.chains.find((c) => c.name === lc.name);
      if (!tc || tc.rules.length !== lc.rules.length) continue;
      lc.rules.forEach((lr, i) => {
        const tr = tc.rules[i] as Rule;
        if (tcpReset(lr) && tcpReset(tr) && hasNfproto(tr) && !hasNfproto(lr)) {
          out.add(`${lt.family} ${lt.name} ${lc.name}#${i + 1}`);
        }
      });
    }
  }
  return out;
}

/** Why our side cannot be built yet (a parser or the tracer is still a stub); undefined when all is in place. */
let pendingReason: string | undefined;
function isStub(e: unknown): boolean {
  return e instanceof Error && /not implemented yet/.test(e.message);
}

/**
 * Compares kernel observations with the tracer for every view of one ruleset. Returns the disagreement reports.
 */
/** The engine's answer for one packet: which certain verdict set holds it (compiled once per ruleset). */
const compiledCache = new WeakMap<Ruleset, ReturnType<typeof compileRuleset>>();
function engineVerdictOf(ruleset: Ruleset, packet: Packet): FinalVerdict | 'uncertain' {
  let c = compiledCache.get(ruleset);
  if (!c) {
    const space = createPacketSpace([ruleset], { interfaces: ['eth0', 'eth1', 'lo'] });
    c = compileRuleset(ruleset, { hook: 'input', space });
    compiledCache.set(ruleset, c);
  }
  for (const v of ['accept', 'drop', 'reject'] as const) if (c.verdict(v).contains(packet, 'input')) return v;
  return 'uncertain';
}

/**
 * observe(), sending again (slower, waiting longer) the probes that never reached fw's prerouting hook: on a loaded
 * machine a veth or the sender can lose one, which says nothing about the ruleset. Such a probe created no conntrack
 * entry in fw, so it is still a new connection the second time.
 */
async function observeRetrying(lab: Lab, probes: readonly Probe[]): Promise<KernelObservation[]> {
  const out = await observe(lab, probes);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const missing = out.flatMap((o, i) => (o.verdict === undefined ? [i] : []));
    if (missing.length === 0) break;
    stats.labRetries += missing.length;
    const again = await observe(
      lab,
      missing.map((i) => out[i]!.probe),
      { gapUs: 200 * attempt, waitMs: 1000 * attempt },
    );
    again.forEach((o, k) => {
      out[missing[k]!] = o;
    });
  }
  return out;
}

function compare(label: string, views: readonly View[], observed: readonly KernelObservation[]): string[] {
  const failures: string[] = [];
  stats.rulesets++;
  stats.packets += observed.length;
  for (const o of observed) if (o.verdict) stats.kernel[o.verdict]++;
  for (const view of views) {
    const rejectObservable = !replyMayBeFiltered(view.ruleset);
    const loaded = views[0];
    const lossy =
      view.nftListing && loaded && loaded !== view ? listingLossyRules(view.ruleset, loaded.ruleset) : new Set();
    for (const o of observed) {
      if (o.verdict === undefined) {
        // Retried already (observeRetrying): a lab fault, reported as one and never counted as a disagreement.
        if (view === views[0]) {
          stats.labFaults++;
          console.warn(`${label}: probe never reached fw's prerouting hook (lab fault): ${describeProbe(o.probe)}`);
        }
        continue;
      }
      let ours: TraceResult;
      try {
        ours = trace(view.ruleset, toPacket(o.probe), { hook: 'input' });
      } catch (e) {
        failures.push(`${label} [${view.name}]: trace threw for ${describeProbe(o.probe)}: ${(e as Error).message}`);
        continue;
      }
      const translated = ours.path.some(
        (s) =>
          (s.kind === 'rewrite' && (s.field === 'daddr' || s.field === 'dport')) ||
          (s.kind === 'rule' && s.effect === 'nat' && /\b(dnat|redirect)\b/.test(s.text)),
      );
      if (translated) {
        exclude('dnat rewrite (packet no longer for this host as sent)');
        continue;
      }
      if (ours.uncertain) {
        exclude('uncertain (opaque match or queue)');
        continue;
      }
      const by = ours.decidedBy;
      if (by?.kind === 'rule' && lossy.has(`${by.family} ${by.table} ${by.chain}#${by.position}`)) {
        exclude(LISTING_LOST_NFPROTO);
        continue;
      }
      stats.comparisons++;
      const kernel = o.verdict;
      if (view === loaded) {
        const engineVerdict = engineVerdictOf(view.ruleset, toPacket(o.probe));
        if (engineVerdict === 'uncertain') stats.engine.uncertain++;
        else {
          stats.engine.comparisons++;
          const engineAgrees = rejectObservable
            ? engineVerdict === kernel
            : (engineVerdict === 'accept') === (kernel === 'accept');
          if (engineAgrees) stats.engine.agree++;
          else
            failures.push(
              `${label} [engine, ${view.name}]\n  packet: ${describeProbe(o.probe)}\n  kernel: ${kernel}\n  engine: ${engineVerdict}`,
            );
        }
      }
      let agree: boolean;
      if (rejectObservable) agree = kernel === ours.verdict;
      else {
        agree = (kernel === 'accept') === (ours.verdict === 'accept');
        if (kernel !== 'accept') stats.rejectUnobservable++;
      }
      if (agree) {
        stats.agree++;
        continue;
      }
      failures.push(
        `${label} [${view.name}]\n  packet: ${describeProbe(o.probe)} (key ${o.probe.key})\n` +
          `  kernel: ${kernel} (prerouting ${o.arrived}, input ${o.delivered}, replies ${JSON.stringify(o.replies)})\n` +
          `  ours:   ${ours.verdict}${rejectObservable ? '' : ' (reject vs drop not compared)'}\n  path:\n${describePath(ours)}`,
      );
    }
  }
  return failures;
}

function report(failures: readonly string[], extra = ''): void {
  if (failures.length === 0) return;
  const shown = failures.slice(0, 8).join('\n\n');
  expect.fail(`${failures.length} disagreement(s) with the kernel${extra}:\n\n${shown}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Views: what our parsers make of the ruleset, as written and as the kernel lists it back.

async function listedNftJson(lab: Lab): Promise<string> {
  return (await lab.fw.run(['nft', '-j', 'list', 'ruleset'])).stdout;
}

/** The IPv4 and IPv6 halves of a file holding both `iptables-save` and `ip6tables-save` output, by their headers. */
function splitSaveDump(text: string): { v4: string; v6: string } | undefined {
  const v6At = text.search(/^# Generated by ip6tables-save/m);
  const v4At = text.search(/^# Generated by iptables-save/m);
  if (v6At < 0 || v4At < 0) return undefined;
  return v4At < v6At
    ? { v4: text.slice(v4At, v6At), v6: text.slice(v6At) }
    : { v6: text.slice(v6At, v4At), v4: text.slice(v4At) };
}

async function listedIptables(lab: Lab): Promise<{ v4: string; v6: string }> {
  const v4 = (await lab.fw.run(['iptables-save'])).stdout;
  const v6 = (await lab.fw.run(['ip6tables-save'])).stdout;
  return { v4, v6 };
}

function iptablesRuleset(
  v4: string | undefined,
  v6: string | undefined,
  file: string,
  ipsets?: { file: string; text: string },
): Ruleset {
  const parts: Ruleset[] = [];
  const opt = ipsets ? { ipsets } : {};
  if (v4 !== undefined && v4.trim() !== '') parts.push(parseIptablesSave(v4, `${file}:v4`, { family: 'ipv4', ...opt }));
  if (v6 !== undefined && v6.trim() !== '') parts.push(parseIptablesSave(v6, `${file}:v6`, { family: 'ipv6', ...opt }));
  return mergeRulesets(parts);
}

/** Builds the views; a stub parser makes the whole suite wait (pendingReason), any other error is a failure. */
function buildViews(build: readonly (() => View)[]): View[] | undefined {
  const views: View[] = [];
  for (const b of build) {
    try {
      views.push(b());
    } catch (e) {
      if (isStub(e)) {
        pendingReason = (e as Error).message;
        return undefined;
      }
      throw e;
    }
  }
  return views;
}

function tracerReady(): boolean {
  try {
    trace(
      { kind: 'ruleset', backend: 'nftables', format: 'nft-text', file: 'probe', tables: [], warnings: [] },
      {
        family: 'ipv4',
        saddr: '10.0.0.1',
        daddr: '10.0.0.2',
        l4proto: 6,
        dport: 1,
        sport: 1,
      },
      { hook: 'input' },
    );
    return true;
  } catch (e) {
    if (isStub(e)) pendingReason = (e as Error).message;
    return !isStub(e);
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe.skipIf(SKIP !== undefined)('kernel agreement (real netfilter in a network namespace lab)', () => {
  /** All labs; `lab` (the first) runs the observation tests, which load rulesets by hand. */
  let labs: (Lab & { readonly fw: RunnerExecutor })[] = [];
  let lab: Lab;
  /** Whether /etc/netns existed before this suite (corpus entries put host names there): if not, it goes at the end. */
  let etcNetnsExisted = true;

  beforeAll(async () => {
    const swept = await sweepStaleLabs();
    if (swept.length > 0) console.log(`removed stale lab namespaces: ${swept.join(', ')}`);
    etcNetnsExisted = existsSync('/etc/netns');
    const made = await Promise.allSettled(Array.from({ length: LABS }, (_, i) => createLab({ tag: `l${i}` })));
    // fw's commands (a few thousand nft, ip, iptables) go through a runner inside fw (see kernel-lab.ts).
    labs = made.flatMap((r) => (r.status === 'fulfilled' ? [withRunner(r.value)] : []));
    const failed = made.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    lab = labs[0]!;
  });

  const commandSummary = (): string => {
    const all = new Map<string, { n: number; cpuMs: number }>();
    for (const l of labs) {
      for (const [k, v] of l.fw.commands) {
        const a = all.get(k) ?? { n: 0, cpuMs: 0 };
        all.set(k, { n: a.n + v.n, cpuMs: a.cpuMs + v.cpuMs });
      }
    }
    return [...all]
      .sort((a, b) => b[1].cpuMs - a[1].cpuMs)
      .map(([k, v]) => `${k} ${v.n}x ${(v.cpuMs / 1000).toFixed(1)} s`)
      .join(', ');
  };

  afterAll(async () => {
    await Promise.all(
      labs.map(async (l) => {
        // A corpus entry's host names, should its test have stopped before its own clean-up.
        rmSync(join('/etc/netns', l.fwNs), { recursive: true, force: true });
        await stopSender(l);
        await flushFirewall(l).catch(() => {});
        // The runner keeps fw alive while it runs: it goes before the namespaces.
        await l.fw.reset();
        await l.teardown();
      }),
    );
    if (!etcNetnsExisted) {
      try {
        // Only when empty: another run (another worktree's suite) may have a lab's host names there right now.
        rmdirSync('/etc/netns');
      } catch {
        // not empty, or already gone
      }
    }
    const ex = Object.entries(stats.excluded)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    console.log(
      [
        `kernel agreement (seed base ${SEED_BASE}, ${labs.length} lab(s) in parallel):`,
        `  rulesets ${stats.rulesets} (${Object.entries(stats.rulesetsByKind)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}), packets ${stats.packets}`,
        `  kernel verdicts: accept ${stats.kernel.accept}, drop ${stats.kernel.drop}, reject ${stats.kernel.reject}`,
        `  comparisons ${stats.comparisons} (probes x parsed views), agree ${stats.agree}, accept-only ${stats.rejectUnobservable}`,
        `  excluded: ${ex || 'none'}`,
        `  rulesets probed in batches (stateful matches met fresh, reloaded in between): ${stats.batchedRulesets}`,
        `  lab: ${stats.labRetries} probe(s) sent again after not reaching fw; ${stats.labFaults} lab fault(s) left (not compared)`,
        `  commands run in fw (count, CPU user + sys): ${commandSummary()}`,
        `  engine (rampart reach's verdict sets) on the same probes: ${stats.engine.comparisons} compared, ${stats.engine.agree} agree, ${stats.engine.uncertain} uncertain`,
        ...(pendingReason ? [`  tracer comparison pending: ${pendingReason}`] : []),
      ].join('\n'),
    );
  });

  // The lab and the observation method, proven without the tracer: hand-written rulesets with known verdicts.
  describe('kernel observation', () => {
    const probe = (key: number, over: { [K in keyof Probe]?: Probe[K] | undefined }): Probe => {
      const p: Record<string, unknown> = {
        key,
        link: 'eth0',
        family: 'ipv4',
        saddr: '10.1.2.3',
        daddr: '192.0.2.80',
        proto: 6,
        sport: nextSport(),
        dport: 443,
        ...over,
      };
      // ICMP probes carry no port.
      if (p.dport === undefined) delete p.dport;
      return p as unknown as Probe;
    };
    const v6 = { family: 'ipv6' as const, saddr: '2001:db8:1::7', daddr: '2001:db8:ff::80' };

    async function verdicts(text: string, probes: Probe[]): Promise<(FinalVerdict | undefined)[]> {
      await loadFirewall(lab, { kind: 'nft-text', text });
      const obs = await observeRetrying(lab, probes);
      return obs.map((o) => o.verdict);
    }

    it('sees accept, drop and reject exactly as a simple policy-drop ruleset decides', async () => {
      const text = `table inet f {
  chain input {
    type filter hook input priority 0; policy drop;
    tcp dport 443 accept
    tcp dport 22 reject with tcp reset
    udp dport 53 reject
    icmp type echo-request accept
  }
}
`;
      const got = await verdicts(text, [
        probe(1, {}),
        probe(2, { dport: 22 }),
        probe(3, { proto: 17, dport: 53 }),
        probe(4, { dport: 80 }),
        probe(5, { proto: 1, dport: undefined }),
        probe(6, { ...v6, link: 'eth1' }),
        probe(7, { ...v6, dport: 22 }),
        probe(8, { ...v6, proto: 17, dport: 53 }),
        probe(9, { ...v6, proto: 58, dport: undefined }),
        probe(10, { ...v6, dport: 8080 }),
      ]);
      expect(got).toEqual([
        'accept',
        'reject',
        'reject',
        'drop',
        'accept',
        'accept',
        'reject',
        'reject',
        'drop',
        'drop',
      ]);
    });

    it('counts a drop in any base chain, even after an accept in another table or chain', async () => {
      const text = `table ip a {
  chain early {
    type filter hook input priority -10; policy accept;
    tcp dport 443 accept
  }
}
table inet b {
  chain late {
    type filter hook input priority 10; policy accept;
    ip saddr 10.1.0.0/16 tcp dport 443 drop
  }
  chain pre {
    type filter hook prerouting priority -150; policy accept;
    iifname "eth1" udp dport 5000-5999 drop
  }
}
`;
      const got = await verdicts(text, [
        probe(1, {}),
        probe(2, { saddr: '172.16.0.1' }),
        probe(3, { proto: 17, dport: 5353, link: 'eth1' }),
        probe(4, { proto: 17, dport: 5353, link: 'eth0' }),
      ]);
      expect(got).toEqual(['drop', 'accept', 'drop', 'accept']);
    });

    it('runs base chains of equal priority in reverse order of loading (the later table first)', async () => {
      // nf_hook_entries_grow() inserts a new hook before existing ones of the same priority.
      const text = `table inet first {
  chain i {
    type filter hook input priority 0; policy accept;
    udp dport 9 drop
  }
}
table ip second {
  chain i {
    type filter hook input priority filter; policy accept;
    udp dport 9 reject
  }
}
`;
      const got = await verdicts(text, [probe(1, { proto: 17, dport: 9 })]);
      expect(got).toEqual(['reject']);
    });

    it('reads iptables-restore rulesets (REJECT, user chains, RETURN) the same way', async () => {
      await loadFirewall(lab, {
        kind: 'iptables',
        v4: `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:web - [0:0]
-A INPUT -p tcp -j web
-A INPUT -p udp -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable
-A web -s 10.1.0.0/16 -j RETURN
-A web -p tcp -m multiport --dports 80,443 -j ACCEPT
COMMIT
`,
      });
      const obs = await observeRetrying(lab, [
        probe(1, { saddr: '172.16.9.9' }),
        probe(2, { saddr: '10.1.9.9' }),
        probe(3, { proto: 17, dport: 53 }),
        probe(4, { dport: 22, saddr: '172.16.9.9' }),
        probe(5, { ...v6 }),
      ]);
      // No ip6tables ruleset loaded: IPv6 is unfiltered.
      expect(obs.map((o) => o.verdict)).toEqual(['accept', 'drop', 'reject', 'drop', 'accept']);
    });

    it('sees every one of a thousand probes exactly once at prerouting', async () => {
      await loadFirewall(lab, {
        kind: 'nft-text',
        text: 'table inet f {\n  chain i {\n    type filter hook input priority 0; policy accept;\n  }\n}\n',
      });
      const r = rng(99);
      const probes = generateProbes(r, makePools(r), 1000, { nextSport });
      const obs = await observeRetrying(lab, probes);
      expect(obs.filter((o) => o.arrived !== 1 || o.delivered !== 1)).toEqual([]);
    });
  });

  describe('tracer agrees with the kernel', () => {
    interface Listed {
      /** `nft -j list ruleset` after loading. */
      readonly json: string;
      /** `iptables-save` / `ip6tables-save` after loading (iptables rulesets only). */
      readonly ipt?: { readonly v4: string; readonly v6: string };
      readonly ipsets?: { file: string; text: string };
    }

    async function runRuleset(
      lab: Lab,
      label: string,
      kind: string,
      src: RulesetSource,
      views: (listed: Listed) => View[] | undefined,
      probes: Probe[],
      extraLocal: readonly string[] = [],
    ): Promise<string[]> {
      try {
        await loadFirewall(lab, src);
      } catch (e) {
        // A fixture captured elsewhere may need what the lab lacks (a netdev device, ...): excluded, not failed.
        // A generated ruleset the kernel refuses is a generator bug and fails.
        if (kind.startsWith('fixture')) {
          console.warn(`${label}: not loadable in the lab, excluded: ${(e as Error).message.split('\n')[0]}`);
          exclude('fixture not loadable in the lab (rulesets)');
          return [];
        }
        return [`${label}: the kernel refused the ruleset: ${(e as Error).message}`];
      }
      const listed: Listed = {
        json: await listedNftJson(lab),
        ...(src.kind === 'iptables' ? { ipt: await listedIptables(lab) } : {}),
        ...(src.kind === 'iptables' && src.ipsets !== undefined
          ? { ipsets: { file: 'ipset save', text: (await lab.fw.run(['ipset', 'save'])).stdout } }
          : {}),
      };
      const built = views(listed);
      if (!built) return [];
      await setExtraLocal(lab, extraLocal, true);
      try {
        // The main verdict is for a fresh source, under every rate limit: probes that reach the same stateful match
        // (a limit, a recent list, a meter) go in separate batches, the ruleset reloaded in between to reset its state.
        const batches = statefulBatches(built[0]!.ruleset, probes);
        const observed: KernelObservation[] = [];
        for (const [i, batch] of batches.entries()) {
          if (i > 0) await loadFirewall(lab, src);
          observed.push(...(await observeRetrying(lab, batch)));
        }
        if (batches.length > 1) stats.batchedRulesets++;
        stats.rulesetsByKind[kind] = (stats.rulesetsByKind[kind] ?? 0) + 1;
        return compare(label, built, observed);
      } finally {
        await setExtraLocal(lab, extraLocal, false);
      }
    }

    const listedViews = (listed: Listed, name: string): (() => View)[] =>
      listed.ipt
        ? [
            () => ({
              name: 'iptables-save (kernel listing)',
              ruleset: iptablesRuleset(listed.ipt?.v4, listed.ipt?.v6, `${name} (iptables-save)`, listed.ipsets),
            }),
          ]
        : [
            () => ({
              name: 'nft -j list ruleset',
              ruleset: parseNftJson(listed.json, `${name} (nft -j list)`),
              nftListing: true,
            }),
          ];

    /**
     * Runs `fn` over the items on every lab at once, each lab taking the next item as soon as it is free; results in
     * item order. Everything random (probes, their source ports) is drawn before, in item order, so a run is the
     * same whatever the number of labs.
     */
    async function acrossLabs<T, R>(
      signal: AbortSignal,
      items: readonly T[],
      fn: (item: T, lab: Lab) => Promise<R>,
    ): Promise<R[]> {
      // A test that timed out leaves its last items running: the next one waits for them, so no two tests share a lab.
      await labsBusy;
      const out: R[] = [];
      let next = 0;
      let failed: { error: unknown } | undefined;
      const running = Promise.all(
        labs.map(async (l) => {
          while (next < items.length && !pendingReason && !failed && !signal.aborted) {
            const i = next++;
            try {
              out[i] = await fn(items[i]!, l);
            } catch (error) {
              // The other labs stop taking items and finish theirs, so no lab is still busy when the test ends.
              failed ??= { error };
            }
          }
        }),
      );
      labsBusy = running.catch(() => {});
      await running;
      if (failed) throw failed.error;
      return out.filter((r) => r !== undefined);
    }

    let labsBusy: Promise<unknown> = Promise.resolve();

    // Generous: ~90 fixtures took over 300 s with stress-ng and three other sessions' work on two cores. A timeout
    // aborts ctx.signal, which stops the test's labs from taking more rulesets.
    it('on every fixture', async (ctx) => {
      if (!tracerReady()) ctx.skip();
      const files: string[] = [];
      const walk = (dir: string): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          // The real-world corpus has its own manifest and suite (the "on the real-world corpus" test below).
          if (e.isDirectory() && p === join(FIXTURES, 'real-world')) continue;
          if (e.isDirectory()) walk(p);
          else if (/\.(nft|json|rules|save|v4|v6)$/.test(e.name)) files.push(p);
        }
      };
      if (existsSync(FIXTURES)) walk(FIXTURES);
      interface Job {
        name: string;
        kind: string;
        src: RulesetSource;
        views: (listed: Listed) => View[] | undefined;
        probes: Probe[];
        extraLocal: readonly string[];
      }
      const jobs: Job[] = [];
      for (const file of files.sort()) {
        const name = relative(ROOT, file);
        const text = readFileSync(file, 'utf8');
        const r = rng(files.indexOf(file) + 7);
        const isJson = file.endsWith('.json');
        const isIpt = /^\*(filter|nat|mangle|raw|security)\s*$/m.test(text) && /^COMMIT\s*$/m.test(text);
        const isNft = !isJson && !isIpt && /^\s*(table|flush|define|include)\b/m.test(text);
        if (!isJson && !isIpt && !isNft) continue;
        if (isJson && !text.trimStart().startsWith('{')) continue;
        // For JSON, addresses and ports come from the matching .nft source when there is one (easier to scan).
        const stem = file.replace(/\.nft\.json$|\.json$/, '');
        const scanText = isJson && existsSync(`${stem}.nft`) ? readFileSync(`${stem}.nft`, 'utf8') : text;
        const pools = poolsFromText(scanText, r, makePools(r));
        const probes = generateProbes(r, pools, PROBES_PER_FIXTURE, { nextSport });
        let src: RulesetSource;
        let views: (listed: Listed) => View[] | undefined;
        if (isIpt) {
          // A concatenated dump (iptables-save; ip6tables-save) goes to both restore tools, split at the headers.
          const halves = splitSaveDump(text);
          const v6 = !halves && /(^|\s)-[sd]\s+[0-9a-f:]*:[0-9a-f:]*\b|ipv6-icmp|icmp6/i.test(text);
          const ipsetFile = join(dirname(file), 'ipsets.save');
          const ipsets =
            /--match-set/.test(text) && existsSync(ipsetFile)
              ? { file: relative(ROOT, ipsetFile), text: readFileSync(ipsetFile, 'utf8') }
              : undefined;
          src = {
            kind: 'iptables',
            ...(halves ? halves : v6 ? { v6: text } : { v4: text }),
            ...(ipsets ? { ipsets: ipsets.text } : {}),
          };
          views = (listed) =>
            buildViews([
              () => ({
                name: 'iptables-save (fixture)',
                ruleset: halves
                  ? iptablesRuleset(halves.v4, halves.v6, name)
                  : iptablesRuleset(v6 ? undefined : text, v6 ? text : undefined, name),
              }),
              ...listedViews(listed, name),
            ]);
        } else if (isJson) {
          src = { kind: 'nft-json', text, file };
          views = (listed) =>
            buildViews([
              () => ({ name: 'nft json (fixture)', ruleset: parseNftJson(text, name) }),
              ...listedViews(listed, name),
            ]);
        } else {
          src = { kind: 'nft-text', text, file };
          views = (listed) =>
            buildViews([
              () => ({ name: 'nft text (fixture)', ruleset: parseNftText(text, file, { include: includeFromDisk }) }),
              ...listedViews(listed, name),
            ]);
        }
        const kind = isIpt ? 'fixture iptables' : isJson ? 'fixture nft-json' : 'fixture nft';
        jobs.push({ name, kind, src, views, probes, extraLocal: pools.extraLocal });
      }
      // One fixture our parser cannot read is a failure of that fixture, not the end of the run.
      const failures = (
        await acrossLabs(ctx.signal, jobs, (j, l) =>
          runRuleset(l, j.name, j.kind, j.src, j.views, j.probes, j.extraLocal).catch((e: Error) => [
            `${j.name}: ${e.message}`,
          ]),
        )
      ).flat();
      if (pendingReason) {
        console.warn(`fixture agreement pending: ${pendingReason}`);
        ctx.skip();
      }
      report(failures);
    }, 900_000);

    /**
     * What a corpus entry needs in fw to load as on its host: dummy interfaces its `iif` rules resolve, addresses for
     * the host names iptables-restore resolves (through /etc/netns/<fw>/hosts, which `ip netns exec` mounts over
     * /etc/hosts), nfacct objects. Returns the undo.
     */
    async function corpusLabSetup(lab: Lab, e: CorpusEntry): Promise<() => Promise<void>> {
      const undo: (() => Promise<void>)[] = [];
      for (const name of e.lab?.interfaces ?? []) {
        // A veth pair with both ends in fw (the dummy driver may be missing); `iif NAME` only needs it to exist.
        await lab.fw.run(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name.slice(0, 12)}-p`]);
        undo.push(async () => void (await lab.fw.run(['ip', 'link', 'del', name], { allowFailure: true })));
      }
      if (e.lab?.hosts) {
        // Only this lab's directory is removed afterwards; /etc/netns itself, if this suite made it, in afterAll.
        const dir = join('/etc/netns', lab.fwNs);
        mkdirSync(dir, { recursive: true });
        const lines = Object.entries(e.lab.hosts).map(([host, addr]) => `${addr} ${host}`);
        writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost\n${lines.join('\n')}\n`);
        // A runner sees the hosts file only if started after it was written (and keeps it until restarted).
        await resetRunner(lab);
        undo.push(async () => {
          rmSync(dir, { recursive: true, force: true });
          await resetRunner(lab);
        });
      }
      for (const name of e.lab?.nfacct ?? []) await lab.fw.run(['nfacct', 'add', name]);
      if (e.lab?.nfacct?.length)
        undo.push(async () => void (await lab.fw.run(['nfacct', 'flush'], { allowFailure: true })));
      return async () => {
        for (const u of undo.reverse()) await u();
      };
    }

    /** How the kernel loads a corpus entry: nft -f with its includes spliced in, or the restore tool of its family. */
    function corpusSource(e: CorpusEntry): RulesetSource {
      if (e.kind === 'nft') return { kind: 'nft-text', text: e.files.map((f) => expandedNftText(e, f)).join('\n') };
      const text = e.files.map((f) => readFileSync(join(CORPUS_DIR, f), 'utf8')).join('');
      const ipsets = e.ipsets ? readFileSync(join(CORPUS_DIR, e.ipsets), 'utf8') : undefined;
      return {
        kind: 'iptables',
        ...(e.family === 'ipv6' ? { v6: text } : { v4: text }),
        ...(ipsets !== undefined ? { ipsets } : {}),
      };
    }

    it('on the real-world corpus (test/fixtures/real-world): the kernel accepts what corpus.json says, and agrees', async (ctx) => {
      if (!tracerReady()) ctx.skip();
      // Sources and probes first, in entry order; then the entries on all labs at once.
      const jobs = corpusEntries().map((e, n) => {
        const label = `real-world ${e.id} (${e.files.join(', ')})`;
        const src = corpusSource(e);
        if (e.kernel === 'refuses') return { e, label, src };
        const scanText =
          e.kind === 'nft'
            ? (src as { text: string }).text
            : `${(src as { v4?: string; v6?: string }).v4 ?? ''}${(src as { v6?: string }).v6 ?? ''}${Object.values(e.lab?.hosts ?? {}).join(' ')}`;
        const r = rng(1000 + n);
        const pools = poolsFromText(scanText, r, makePools(r));
        const probes = generateProbes(r, pools, PROBES_PER_FIXTURE, { nextSport });
        return { e, label, src, probes, extraLocal: pools.extraLocal };
      });
      const results = await acrossLabs(
        ctx.signal,
        jobs,
        async ({ e, label, src, probes, extraLocal }, l): Promise<string[]> => {
          const undo = await corpusLabSetup(l, e);
          try {
            if (!probes) {
              const refused = await loadFirewall(l, src).then(
                () => undefined,
                (err: Error) => err.message,
              );
              return refused === undefined ? [`${label}: corpus.json says the kernel refuses it, but it loaded`] : [];
            }
            return await runRuleset(
              l,
              label,
              'real-world',
              src,
              (listed) =>
                buildViews([
                  () => ({ name: 'rampart reading the files', ruleset: readCorpusEntry(e) }),
                  ...listedViews(listed, e.id),
                ]),
              probes,
              extraLocal,
            ).catch((err: Error) => [`${label}: ${err.message}`]);
          } finally {
            await undo();
          }
        },
      );
      report(results.flat());
    }, 900_000);

    it(`on ${NFT_RULESETS} generated nft rulesets`, async (ctx) => {
      if (!tracerReady()) ctx.skip();
      const jobs = Array.from({ length: NFT_RULESETS }, (_, i) => {
        const seed = SEED_BASE * 1000 + i;
        const g = generateNftRuleset(seed);
        const probes = generateProbes(rng(seed ^ 0x5eed), g.pools, PROBES_PER_RULESET, { nextSport });
        return { seed, g, probes };
      });
      const results = await acrossLabs(ctx.signal, jobs, async ({ seed, g, probes }, l) => {
        const label = `generated nft ruleset, seed ${seed} (generateNftRuleset(${seed}))`;
        const views = (listed: Listed): View[] | undefined =>
          buildViews([
            () => ({ name: 'nft text (generated)', ruleset: parseNftText(g.text, `seed-${seed}.nft`) }),
            ...listedViews(listed, `seed-${seed}`),
          ]);
        const res = await runRuleset(
          l,
          label,
          'generated nft',
          { kind: 'nft-text', text: g.text },
          views,
          probes,
        ).catch((e: Error) => [`${label}: ${e.message}`]);
        return res.map((f) => `${f}\n  ruleset:\n${g.text.replace(/^/gm, '    ')}`);
      });
      const failures = results.flat();
      if (pendingReason) {
        console.warn(`generated nft agreement pending: ${pendingReason}`);
        ctx.skip();
      }
      report(failures);
    }, 600_000);

    it(`on ${IPT_RULESETS} generated iptables rulesets`, async (ctx) => {
      if (!tracerReady()) ctx.skip();
      const jobs = Array.from({ length: IPT_RULESETS }, (_, i) => {
        const seed = SEED_BASE * 1000 + 500 + i;
        const g = generateIptablesRuleset(seed);
        const probes = generateProbes(rng(seed ^ 0x5eed), g.pools, PROBES_PER_RULESET, { nextSport });
        return { seed, g, probes };
      });
      const results = await acrossLabs(ctx.signal, jobs, async ({ seed, g, probes }, l) => {
        const label = `generated iptables ruleset, seed ${seed} (generateIptablesRuleset(${seed}))`;
        const res = await runRuleset(
          l,
          label,
          'generated iptables',
          { kind: 'iptables', v4: g.v4, v6: g.v6 },
          (listed) =>
            buildViews([
              () => ({ name: 'iptables-save (generated)', ruleset: iptablesRuleset(g.v4, g.v6, `seed-${seed}`) }),
              ...listedViews(listed, `seed-${seed}`),
            ]),
          probes,
        ).catch((e: Error) => [`${label}: ${e.message}`]);
        return res.map((f) => `${f}\n  ruleset:\n${`${g.v4}${g.v6}`.replace(/^/gm, '    ')}`);
      });
      const failures = results.flat();
      if (pendingReason) {
        console.warn(`generated iptables agreement pending: ${pendingReason}`);
        ctx.skip();
      }
      report(failures);
    }, 600_000);

    it(`covered at least ${MIN_RULESETS} rulesets and ${MIN_PACKETS} packets with a mix of verdicts`, (ctx) => {
      if (pendingReason) ctx.skip();
      expect(stats.rulesets).toBeGreaterThanOrEqual(MIN_RULESETS);
      expect(stats.packets).toBeGreaterThanOrEqual(MIN_PACKETS);
      for (const v of ['accept', 'drop', 'reject'] as const)
        expect(stats.kernel[v]).toBeGreaterThan(stats.packets / 20);
      expect(stats.comparisons).toBeGreaterThan(0);
      // Lab faults are not disagreements, but a lab that loses more than 1% of its probes after retries is broken.
      expect(stats.labFaults, 'probes lost by the lab after retries').toBeLessThanOrEqual(stats.packets / 100);
      // reach answers (the engine's verdict sets) were checked against the kernel on at least 2,000 packets too
      expect(stats.engine.comparisons).toBeGreaterThanOrEqual(MIN_PACKETS);
    });
  });
});
