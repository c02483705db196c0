/**
 * Change planning: what a proposed ruleset would do to each host, computed before anything is applied, as plain data
 * (src/change/types.ts) that is stored with the change, reviewed and rendered (render-plan.ts).
 *
 * Per host: the semantic diff against the host's current desired ruleset (an empty, accept-everything ruleset when it
 * has none yet), the audit findings the change introduces and fixes, the intents the new ruleset violates, the blast
 * radius on the declared services, admin networks and must-allow intents, the blockers (the founding outage: a
 * public service closed, a must-allow intent violated) and a risk level.
 *
 * Pure: texts in, data out. No files, clock or process: the caller reads files (or the store) and passes `today`.
 * Both rulesets of a host are compiled once, in one shared packet space, and the audit reuses those compilations.
 */

import { AUDIT_PATHS } from '../analysis/audit/rules/hygiene-common.js';
import { DEFAULT_ADMIN_PORTS } from '../analysis/audit/rules/service.js';
import {
  exampleOf,
  exists,
  hostAddresses,
  type InboundQuery,
  inbound,
  internetSources,
  portSpec,
  preferFor,
  subtractRanges,
} from '../analysis/audit/rules/service-sets.js';
import { runAudit } from '../analysis/audit/run.js';
import type { AuditContext, Finding } from '../analysis/audit/types.js';
import { severityRank } from '../analysis/audit/types.js';
import {
  type ChainMemo,
  type CompiledBddRuleset,
  compileAnyState,
  compileRuleset,
  createChainMemo,
  dependsOnState,
} from '../analysis/compile.js';
import { type DeciderInfo, formatDecider, formatPacket, share } from '../analysis/describe.js';
import { type DiffResult, diffCompiled } from '../analysis/diff.js';
import { flowInterfaces, flowPreference } from '../analysis/flow-spec.js';
import { diffRulesets, settledRules } from '../analysis/incremental.js';
import { checkIntents, type Intent, intentFlow } from '../analysis/intents.js';
import { type BddPacketSpace, createPacketSpace } from '../analysis/packet-space.js';
import type { CompiledRuleset, PacketSet } from '../analysis/types.js';
import { managedTables } from '../config/load.js';
import type { HostConfig, PortDecl, RampartConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { sameRulesetText } from '../firewall/fingerprint.js';
import { type FirewallTarget, isManagedTable, managedRuleset } from '../firewall/managed-tables.js';
import type { L3, Packet, Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import type { IncludedFile } from '../firewall/parsers/nft-text.js';
import type { TraceHook } from '../firewall/tracer.js';
import { parseAddressRange } from '../firewall/values.js';
import type {
  BlastRadiusEntry,
  Blocker,
  BlockerKind,
  HostPlan,
  Plan,
  PlanDiffChange,
  PlanFinding,
  PlanHostInput,
  RiskLevel,
} from './types.js';
import { RISK_LEVELS } from './types.js';

/** The hooks whose behaviour a plan compares: traffic to the host, through it, and from it. */
export const PLAN_HOOKS: readonly TraceHook[] = ['input', 'forward', 'output'];

/** The phases computePlan reports to `onPhase` (a benchmark times them; the core reads no clock). */
export type PlanPhase = 'parse' | 'compile' | 'diff' | 'audit' | 'intents' | 'blast-radius';

export interface PlanOptions {
  /** YYYY-MM-DD for the expiry audit rules (the core reads no clock). Default 1970-01-01: nothing has expired. */
  readonly today?: string;
  /** At most this many flows per verdict change and hook (default 20). */
  readonly limit?: number;
  /** Hooks to diff (default input, forward, output). */
  readonly hooks?: readonly TraceHook[];
  /** Resolves nft `include` statements (the CLI reads the files; the server has none to read). */
  readonly include?: (path: string, fromFile: string) => readonly IncludedFile[];
  /** false: leave the audit out (findings stay empty); drift needs only the semantic diff. Default true. */
  readonly findings?: boolean;
  /**
   * Only the semantic diff (a drift check): no audit, intents, blast radius or opaque-match notes. Texts that differ
   * only in what the kernel changes when it prints the same ruleset again (dates, counters, handles) are recognised
   * as unchanged without parsing, and otherwise only the region the changed rules can match is compiled.
   */
  readonly diffOnly?: boolean;
  /**
   * false: audit every rule of both versions, the ones whose findings the change cannot alter included (the reference
   * the tests compare the default with). Default true: those rules are left out on both sides (settledRules).
   */
  readonly settle?: boolean;
  /** Called when a phase of a host's plan starts (and with 'done' at the end), for timing. */
  readonly onPhase?: (host: string, phase: PlanPhase | 'done') => void;
}

/** Computes the plan of a change: one HostPlan per input, the highest risk, every blocker and a summary line. */
export function computePlan(config: RampartConfig, hosts: readonly PlanHostInput[], opts: PlanOptions = {}): Plan {
  const hostPlans = hosts.map((h) => planHost(config, h, opts));
  const blockers = hostPlans.flatMap((h) => h.blockers);
  const risk = maxRisk(hostPlans.map((h) => h.risk));
  return {
    schema: 'rampart.plan/v1',
    hosts: hostPlans,
    risk,
    blocked: blockers.length > 0,
    blockers,
    summary: summarize(hostPlans, blockers, risk),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One host

/** Example interface names (the CLI's): a flow on an interface no rule mentions reads as eth0, not `other0`. */
const EXAMPLE_INTERFACES: readonly string[] = ['eth0'];

function findHost(config: RampartConfig, name: string): HostConfig {
  const host = config.hosts.find((h) => h.name === name);
  if (host) return host;
  const known = config.hosts.map((h) => h.name);
  throw new UserError(
    'RAMPART_ERR_VALIDATION',
    `host '${name}' is not declared in ${config.file}; ${known.length > 0 ? `declared hosts: ${known.join(', ')}` : 'no hosts are declared (add them under hosts:)'}`,
    { field: 'host', value: name, known },
  );
}

/** Where a ruleset is, for the empty "before" of a host's first ruleset. */
const NO_RULESET_FILE = '(no ruleset yet)';

function emptyRuleset(like: Ruleset): Ruleset {
  return {
    kind: 'ruleset',
    backend: like.backend,
    format: like.format,
    file: NO_RULESET_FILE,
    tables: [],
    warnings: [],
  };
}

/** The audit context of one side, over the shared space and the shared compilations. */
function auditContext(
  config: RampartConfig,
  host: HostConfig,
  ruleset: Ruleset,
  space: BddPacketSpace,
  today: string,
  memo: ChainMemo,
): AuditContext {
  const cache = new Map<TraceHook, CompiledBddRuleset>();
  const anyState = new Map<TraceHook, CompiledBddRuleset>();
  const stateful = dependsOnState(ruleset);
  const compiled = (hook: TraceHook): CompiledBddRuleset => {
    let c = cache.get(hook);
    if (!c) {
      c = compileRuleset(ruleset, { hook, space, memo });
      cache.set(hook, c);
    }
    return c;
  };
  return {
    ruleset,
    file: ruleset.file,
    space,
    compiled,
    compiledAnyState(hook) {
      // No stateful match with a known fresh-source outcome: the default compilation is the same one.
      if (!stateful) return compiled(hook);
      let c = anyState.get(hook);
      if (!c) {
        c = compileAnyState(ruleset, compiled(hook), { memo });
        anyState.set(hook, c);
      }
      return c;
    },
    config,
    host,
    services: config.services.filter((s) => s.hosts.includes(host.name)),
    addresses: host.addresses,
    adminNetworks: config.adminNetworks,
    settings: config.audit,
    today,
  };
}

function planHost(config: RampartConfig, input: PlanHostInput, opts: PlanOptions): HostPlan {
  const host = findHost(config, input.host);
  if (opts.diffOnly) return driftHost(host, input, opts);
  const phase = (p: PlanPhase | 'done') => opts.onPhase?.(host.name, p);
  const parseOpts = opts.include ? { include: opts.include } : {};
  phase('parse');
  // The desired ruleset first: its parse error is the one a proposer needs to see. It is read the way the agent
  // will apply it (src/firewall/managed-tables.ts): what the agent would refuse is refused here, at plan time.
  const target: FirewallTarget = { firewall: host.firewall ?? 'nftables', tables: managedTables(host) };
  const written = managedRuleset(target, {
    text: input.desired.text,
    format: input.desired.format,
    file: input.desired.file,
  });
  const firstRuleset = input.current === null;
  const current = input.current
    ? parseRuleset(input.current.text, input.current.file, { format: input.current.format, ...parseOpts })
    : emptyRuleset(written);
  // What the host will run: the managed tables replaced, any other table of the current ruleset as it is.
  const kept = current.tables.filter((t) => !isManagedTable(target, t));
  const desired: Ruleset = kept.length === 0 ? written : { ...written, tables: [...kept, ...written.tables] };
  const notes: string[] = [];
  if (!written.tables.some((t) => isManagedTable(target, t))) {
    notes.push(
      `${input.desired.file} defines none of the managed tables (${target.tables.join(', ')}): the agent deletes them, and ${host.name} runs ${kept.length > 0 ? `with its other tables only (${kept.map((t) => `${t.family} ${t.name}`).join(', ')})` : 'without a firewall: every packet is accepted'}`,
    );
  }

  const intents = config.intents.filter((i) => intentAppliesTo(i, host));
  const space = createPacketSpace([current, desired], {
    interfaces: [...EXAMPLE_INTERFACES, ...flowInterfaces(intents.map((i) => i.spec))],
  });
  const today = opts.today ?? '1970-01-01';
  // One memo for every compilation of the plan: the desired ruleset replays the current one's runs of the chains
  // the change leaves alone, and the hook paths share the runs of the chains they have in common.
  const memo = createChainMemo(space);
  const before = auditContext(config, host, current, space, today, memo);
  const after = auditContext(config, host, desired, space, today, memo);
  const uncertain: string[] = [];

  const hooks = opts.hooks ?? PLAN_HOOKS;
  phase('compile');
  for (const hook of hooks) {
    before.compiled(hook);
    after.compiled(hook);
  }

  phase('diff');
  const changes: PlanDiffChange[] = [];
  for (const hook of hooks) {
    const newC = after.compiled(hook);
    // Both sides are compiled in full already (the audit, intents and blast radius need them): their verdict sets
    // cost less than compiling both sides again inside the changed region (diffRulesets, for the drift check, which
    // compiles nothing else). On kube-proxy the region is most of the space: 1k rules, 3.1 s -> 0.47 s CPU.
    const d = diffCompiled(before.compiled(hook), newC, { limit: opts.limit ?? 20 });
    collectChanges(hook, d, changes, uncertain);
    const opaque = newC.uncertain();
    if (!opaque.isEmpty()) {
      uncertain.push(
        `hook ${hook}: the verdict of ${share(opaque.count(), space.all().count())} of all packets depends on opaque matches (rate limits, unknown sets or modules) in ${desired.file}`,
      );
    }
  }

  phase('audit');
  let findings: HostPlan['findings'] = { introduced: [], fixed: [] };
  if (opts.findings !== false) {
    // Only the findings the change introduces or fixes are reported: rules whose findings are the same in both
    // versions (outside the region the change touches) are left out on both sides. A first ruleset replaces
    // nothing: every finding is new.
    const settled =
      firstRuleset || opts.settle === false
        ? undefined
        : settledRules(current, desired, AUDIT_PATHS, space, (version, hook) =>
            (version === 'prev' ? before : after).compiledAnyState(hook),
          );
    const afterFindings = runAudit(settled ? { ...after, settled: settled.next } : after).findings;
    const beforeFindings = firstRuleset
      ? []
      : runAudit(settled ? { ...before, settled: settled.prev } : before).findings;
    findings = compareFindings(beforeFindings, afterFindings);
  }

  phase('intents');
  const intentViolations: { intent: string; message: string; example?: string }[] = [];
  const dangers: Blocker[] = [];
  for (const r of checkIntents(intents, (hook) => after.compiled(hook))) {
    if (r.status === 'uncertain') {
      uncertain.push(
        `intent '${r.intent.name}': ${share(r.uncertain.count(), r.packets)} of its packets depend on opaque matches`,
      );
      continue;
    }
    if (r.status !== 'violated') continue;
    const what = r.intent.must === 'allow' ? 'not accepted' : 'accepted';
    const by = r.decidedBy ? ` (decided by ${deciderText(r.decidedBy)})` : '';
    const message = `must ${r.intent.must}: ${r.summary ?? `${share(r.violating.count(), r.packets)} of its packets are ${what}`}${by}`;
    const example = r.counterexample ? formatPacket(r.counterexample) : undefined;
    intentViolations.push({ intent: r.intent.name, message, ...(example ? { example } : {}) });
    if (r.intent.must === 'allow') {
      dangers.push({
        host: host.name,
        kind: 'violates-must-allow',
        message: `violates must-allow intent '${r.intent.name}' on ${host.name}: ${r.summary ?? `${share(r.violating.count(), r.packets)} of its packets are not accepted`}${by}`,
        subject: r.intent.name,
        ...(example ? { example } : {}),
      });
      continue;
    }
    // A must-deny intent the current ruleset already violates is shown above; the change is dangerous where it
    // accepts packets of the flow that were not accepted before.
    const hook = r.intent.hook ?? 'input';
    const was = intentFlow(space, r.intent.spec).and(before.compiled(hook).verdict('accept'));
    const newly = r.violating.minus(was);
    if (newly.isEmpty()) continue;
    const prefer = { ...preferFor(r.intent.spec.families?.[0] ?? 'ipv4'), ...flowPreference(r.intent.spec) };
    const newExample = exampleOf(newly, prefer);
    dangers.push({
      host: host.name,
      kind: 'violates-must-deny',
      message: `violates must-deny intent '${r.intent.name}' on ${host.name}: ${share(newly.count(), r.packets)} of its packets are newly accepted${by}`,
      subject: r.intent.name,
      ...(newExample ? { example: formatPacket(newExample) } : {}),
    });
  }

  phase('blast-radius');
  const radius = blastRadius(config, host, before, after, intents, firstRuleset);
  dangers.unshift(...radius.dangers);
  uncertain.push(...radius.uncertain);

  const blocking = new Set<BlockerKind>(config.policy.blockOn);
  const blockers = dangers.filter((d) => blocking.has(d.kind));
  const warnings = dangers.filter((d) => !blocking.has(d.kind));
  const risk = hostRisk(blockers, warnings, radius.entries, changes, findings.introduced);
  phase('done');
  return {
    host: host.name,
    format: input.desired.format,
    firstRuleset,
    changes,
    findings,
    intentViolations,
    blastRadius: radius.entries,
    risk,
    blockers,
    warnings,
    notes,
    uncertain,
  };
}

/**
 * A drift check: the semantic diff alone. Equal fingerprints (the same text but for dates, counters and handles)
 * mean the same ruleset: nothing is parsed or compiled. Otherwise each hook compares only where rules differ.
 */
function driftHost(host: HostConfig, input: PlanHostInput, opts: PlanOptions): HostPlan {
  const phase = (p: PlanPhase | 'done') => opts.onPhase?.(host.name, p);
  const empty = (changes: PlanDiffChange[], uncertain: string[]): HostPlan => ({
    host: host.name,
    format: input.desired.format,
    firstRuleset: input.current === null,
    changes,
    findings: { introduced: [], fixed: [] },
    intentViolations: [],
    blastRadius: [],
    risk: hostRisk([], [], [], changes, []),
    blockers: [],
    uncertain,
  });
  phase('parse');
  const cur = input.current;
  if (cur && cur.format === input.desired.format && sameRulesetText(cur.text, input.desired.text, cur.format)) {
    phase('done');
    return empty([], []);
  }
  const parseOpts = opts.include ? { include: opts.include } : {};
  const desired = parseRuleset(input.desired.text, input.desired.file, { format: input.desired.format, ...parseOpts });
  const current = cur ? parseRuleset(cur.text, cur.file, { format: cur.format, ...parseOpts }) : emptyRuleset(desired);
  const space = createPacketSpace([current, desired], { interfaces: EXAMPLE_INTERFACES });
  phase('diff');
  const changes: PlanDiffChange[] = [];
  const uncertain: string[] = [];
  for (const hook of opts.hooks ?? PLAN_HOOKS) {
    const d = diffRulesets(current, desired, { hook, space, limit: opts.limit ?? 20 });
    collectChanges(hook, d, changes, uncertain);
  }
  phase('done');
  return empty(changes, uncertain);
}

/** A hook's diff as plan changes (and a note per verdict pair whose flows are not all listed). */
function collectChanges(hook: TraceHook, d: DiffResult, changes: PlanDiffChange[], uncertain: string[]): void {
  for (const g of d.groups) {
    for (const f of g.flows) {
      const oldRule = f.old[0];
      const newRule = f.new[0];
      changes.push({
        hook,
        from: f.from,
        to: f.to,
        flow: f.flow.text,
        example: f.flow.example ? formatPacket(f.flow.example) : '',
        ...(oldRule ? { oldRule: deciderText(oldRule) } : {}),
        ...(newRule ? { newRule: deciderText(newRule) } : {}),
      });
    }
    if (g.morePackets > 0n) {
      uncertain.push(
        `hook ${hook}, ${g.from} -> ${g.to}: only the ${g.flows.length} largest flows are listed (${share(g.morePackets, g.packets)} of these packets not shown)`,
      );
    }
  }
}

/** `file:line: rule text [table/chain #n]`, or the policy / path end that decided. */
function deciderText(d: DeciderInfo): string {
  return d.kind === 'path-end' ? 'no base chain filters these packets (accept)' : formatDecider(d);
}

/**
 * Whether an intent is about this host: intents are site-wide, but an input-hook intent names the destination it
 * protects; on a host without that address it says nothing (web2's ruleset need not accept web1's traffic).
 */
function intentAppliesTo(intent: Intent, host: HostConfig): boolean {
  if ((intent.hook ?? 'input') !== 'input' || !intent.spec.to || host.addresses.length === 0) return true;
  return host.addresses.some((a) => {
    const r = parseAddressRange(a);
    return r !== undefined && intent.spec.to?.some((t) => t.family === r.family && t.lo <= r.lo && r.hi <= t.hi);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Findings introduced and fixed

/**
 * A finding's identity across two versions of a ruleset: the rule id, the quoted rule text and the message with
 * locations, line numbers and chain positions taken out, so moving a rule is neither "fixed" nor "introduced".
 */
export function findingKey(f: Finding): string {
  const message = f.message
    .replace(/[\w./()@+-]*:\d+(?::\d+)?/g, '<at>')
    .replace(/\bline \d+/g, 'line <n>')
    .replace(/#\d+/g, '#<n>');
  return `${f.rule}\u0000${f.text ?? ''}\u0000${message}`;
}

function planFinding(f: Finding): PlanFinding {
  const loc = f.location;
  return {
    rule: f.rule,
    severity: f.severity,
    message: f.message,
    ...(loc ? { location: `${loc.file}:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}` } : {}),
  };
}

/** Multiset difference both ways (two identical findings on both sides cancel pairwise). */
function compareFindings(
  before: readonly Finding[],
  after: readonly Finding[],
): { introduced: PlanFinding[]; fixed: PlanFinding[] } {
  const count = (fs: readonly Finding[]) => {
    const m = new Map<string, number>();
    for (const f of fs) m.set(findingKey(f), (m.get(findingKey(f)) ?? 0) + 1);
    return m;
  };
  const take = (fs: readonly Finding[], other: Map<string, number>): PlanFinding[] => {
    const out: PlanFinding[] = [];
    for (const f of fs) {
      const k = findingKey(f);
      const n = other.get(k) ?? 0;
      if (n > 0) other.set(k, n - 1);
      else out.push(planFinding(f));
    }
    return out;
  };
  return { introduced: take(after, count(before)), fixed: take(before, count(after)) };
}

// ---------------------------------------------------------------------------------------------------------------
// Blast radius

type Openness = BlastRadiusEntry['before'];

interface Reach {
  readonly state: Openness;
  /** The packets of the query that get through (on some interface). */
  readonly reached: PacketSet;
  readonly uncertain: boolean;
}

/**
 * How open a query is: a packet gets through when it is accepted (or may be: rate limits count as open, and are
 * listed as uncertain) on some interface. Which interface faces the internet is not declared, so accepting the
 * service on eth0 only is not closing it (the public-service-blocked audit rule reads it the same way). Intent
 * flows are taken as declared (they may name their interface): there, every packet of the flow must pass.
 */
function openness(c: CompiledRuleset, q: PacketSet, anyInterface: boolean): Reach {
  const ok = q.and(c.verdict('accept').or(c.uncertain()));
  const reached = anyInterface ? exists(ok, ['iifname']).and(q) : ok;
  const state: Openness = reached.equals(q) ? 'open' : reached.isEmpty() ? 'closed' : 'partial';
  return { state, reached, uncertain: !q.and(c.uncertain()).isEmpty() };
}

function families(host: HostConfig): L3[] {
  if (host.addresses.length === 0) return ['ipv4', 'ipv6'];
  const fams = new Set<L3>();
  for (const a of host.addresses) {
    const r = parseAddressRange(a);
    if (r) fams.add(r.family);
  }
  return (['ipv4', 'ipv6'] as const).filter((f) => fams.has(f));
}

interface Radius {
  readonly entries: BlastRadiusEntry[];
  /** Public services closed, admin ports newly open to the internet (blocking or not, per policy). */
  readonly dangers: Blocker[];
  readonly uncertain: string[];
}

function blastRadius(
  config: RampartConfig,
  host: HostConfig,
  before: AuditContext,
  after: AuditContext,
  intents: readonly Intent[],
  firstRuleset: boolean,
): Radius {
  const entries: BlastRadiusEntry[] = [];
  const dangers: Blocker[] = [];
  const uncertain: string[] = [];
  const oldC = before.compiled('input');
  const newC = after.compiled('input');
  const fams = families(host);
  const firstAddress = (fam: L3) => host.addresses.find((a) => parseAddressRange(a)?.family === fam);

  /** Compares one query (per family) before and after; returns the entry and the packets that no longer pass. */
  const compare = (
    subject: string,
    kind: BlastRadiusEntry['kind'],
    queries: readonly { fam: L3; set: PacketSet; prefer: Partial<Packet> }[],
  ): { entry: BlastRadiusEntry; dropped?: string } => {
    let q = after.space.none();
    for (const x of queries) q = q.or(x.set);
    const b = openness(oldC, q, kind !== 'intent');
    const a = openness(newC, q, kind !== 'intent');
    if (b.uncertain || a.uncertain) uncertain.push(`${subject}: depends on opaque matches (counted as open)`);
    const lost = b.reached.minus(a.reached);
    const gained = a.reached.minus(b.reached);
    const effect = !lost.isEmpty() ? 'loses-access' : !gained.isEmpty() ? 'gains-access' : 'unchanged';
    const shown = effect === 'loses-access' ? lost : effect === 'gains-access' ? gained : undefined;
    const pick = (set: PacketSet | undefined): string | undefined => {
      if (!set) return undefined;
      for (const x of queries) {
        const p = exampleOf(set.and(x.set), x.prefer);
        if (p) return formatPacket(p);
      }
      return undefined;
    };
    const example = pick(shown);
    const notPassing = q.minus(a.reached);
    const dropped = a.state === 'open' ? undefined : pick(notPassing);
    return {
      entry: { subject, kind, before: b.state, after: a.state, effect, ...(example ? { example } : {}) },
      ...(dropped ? { dropped } : {}),
    };
  };

  const portQueries = (decl: PortDecl, sources: (fam: L3) => InboundQuery['sources']) => {
    const port = portSpec(decl);
    return fams.flatMap((fam) => {
      const daddrs = hostAddresses(after, fam);
      const src = sources(fam);
      if (src?.length === 0) return [];
      const set = inbound(after, { family: fam, daddrs, ports: [port], ...(src ? { sources: src } : {}) });
      const daddr = firstAddress(fam);
      return [
        { fam, set, prefer: preferFor(fam, { l4proto: port.proto, dport: port.from, ...(daddr ? { daddr } : {}) }) },
      ];
    });
  };

  // Declared public services: every internet source to the host's addresses on the port.
  for (const svc of config.services) {
    if (!svc.hosts.includes(host.name)) continue;
    for (const decl of svc.public) {
      const { entry, dropped } = compare(`${svc.name} ${decl.text}`, 'service', portQueries(decl, internetSources));
      entries.push(entry);
      if (entry.after !== 'open' && (entry.before !== 'closed' || firstRuleset)) {
        const was = firstRuleset ? 'had no ruleset before' : `was ${entry.before}`;
        const scope = entry.after === 'closed' ? 'the internet' : 'part of the internet';
        dangers.push({
          host: host.name,
          kind: 'closes-public-service',
          message: `closes ${decl.text} of service ${svc.name} on ${host.name} to ${scope} (${was})`,
          subject: svc.name,
          ...(dropped ? { example: dropped } : {}),
        });
      }
    }
  }

  // Admin ports from the internet outside the admin networks: newly reachable is a door opened to everyone.
  const adminPorts = config.audit.adminPorts ?? DEFAULT_ADMIN_PORTS;
  for (const decl of adminPorts) {
    const outside = (fam: L3) =>
      subtractRanges(
        internetSources(fam),
        config.adminNetworks.flatMap((n) => parseAddressRange(n) ?? []).filter((n) => n.family === fam),
      );
    const queries = portQueries(decl, outside).filter((x) => !x.set.isEmpty());
    if (queries.length === 0) continue;
    const { entry } = compare(`admin ${decl.text} from the internet`, 'exposure', queries);
    if (entry.effect !== 'gains-access') continue;
    entries.push(entry);
    const scope = entry.after === 'open' ? 'the internet' : 'part of the internet';
    const outsideAdmin = config.adminNetworks.length > 0 ? ' outside the admin networks' : '';
    dangers.push({
      host: host.name,
      kind: 'exposes-admin-port',
      message: `opens admin port ${decl.text} on ${host.name} to ${scope}${outsideAdmin} (was ${entry.before})`,
      subject: decl.text,
      ...(entry.example ? { example: entry.example } : {}),
    });
  }

  // Admin ports from the admin networks: losing them locks the operators out.
  if (config.adminNetworks.length > 0) {
    const nets = config.adminNetworks.flatMap((n) => parseAddressRange(n) ?? []);
    const from = config.adminNetworks.join(', ');
    for (const decl of adminPorts) {
      const queries = portQueries(decl, (fam) => nets.filter((n) => n.family === fam)).filter((x) => !x.set.isEmpty());
      if (queries.length === 0) continue;
      entries.push(compare(`admin ${decl.text} from ${from}`, 'admin', queries).entry);
    }
  }

  // Must-allow intents: the flows the site declared must pass, on their hooks.
  for (const intent of intents) {
    if (intent.must !== 'allow' || (intent.hook ?? 'input') !== 'input') continue;
    const set = intentFlow(after.space, intent.spec);
    const fam = intent.spec.families?.[0] ?? 'ipv4';
    const prefer = { ...preferFor(fam), ...flowPreference(intent.spec) };
    entries.push(compare(intent.name, 'intent', [{ fam, set, prefer }]).entry);
  }
  return { entries, dangers, uncertain };
}

// ---------------------------------------------------------------------------------------------------------------
// Risk and summary

function maxRisk(risks: readonly RiskLevel[]): RiskLevel {
  let best = 0;
  for (const r of risks) best = Math.max(best, RISK_LEVELS.indexOf(r));
  return RISK_LEVELS[best] ?? 'low';
}

/**
 * Critical when something blocks the plan, or when it closes a public service or breaks a must-allow intent even
 * where the policy lets that through; at least high for an admin port newly open to the internet or a must-deny
 * intent newly violated, lost access or a new high finding; medium for anything newly dropped.
 */
function hostRisk(
  blockers: readonly Blocker[],
  warnings: readonly Blocker[],
  radius: readonly BlastRadiusEntry[],
  changes: readonly PlanDiffChange[],
  introduced: readonly PlanFinding[],
): RiskLevel {
  const worst = (min: 'high' | 'medium') =>
    introduced.some((f) => severityRank(f.severity as Finding['severity']) >= severityRank(min));
  const outage = (b: Blocker) => b.kind === 'closes-public-service' || b.kind === 'violates-must-allow';
  if (blockers.length > 0 || warnings.some(outage)) return 'critical';
  if (warnings.length > 0) return 'high';
  if (radius.some((e) => e.effect === 'loses-access') || worst('high')) return 'high';
  if (changes.some((c) => c.to === 'drop' || c.to === 'reject') || worst('medium')) return 'medium';
  return 'low';
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A blocker in a few words, for the summary line. */
function blockerShort(b: Blocker): string {
  if (b.kind === 'violates-must-allow' || b.kind === 'violates-must-deny')
    return `violates '${b.subject}' on ${b.host}`;
  if (b.kind === 'exposes-admin-port') return `opens admin ${b.subject} on ${b.host} to the internet`;
  const port = /^closes (\S+)/.exec(b.message)?.[1] ?? '';
  return `closes ${b.subject} ${port} on ${b.host}`;
}

function summarize(hosts: readonly HostPlan[], blockers: readonly Blocker[], risk: RiskLevel): string {
  const changes = hosts.reduce((n, h) => n + h.changes.length, 0);
  const introduced = hosts.reduce((n, h) => n + h.findings.introduced.length, 0);
  const fixed = hosts.reduce((n, h) => n + h.findings.fixed.length, 0);
  const parts = [
    plural(hosts.length, 'host'),
    plural(changes, 'flow change'),
    `${plural(introduced, 'finding')} introduced`,
    `${fixed} fixed`,
    `risk ${risk}`,
  ];
  if (blockers.length === 0) return `${parts.join(', ')}, not blocked`;
  const shown = blockers.slice(0, 3).map(blockerShort);
  const more = blockers.length > 3 ? ` and ${blockers.length - 3} more` : '';
  return `${parts.join(', ')}, blocked: ${shown.join('; ')}${more}`;
}
