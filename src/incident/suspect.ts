/**
 * The suspected change (issue 16 §3): which change or drift in the look-back window actually broke the incident's
 * failing flows, answered by the packet-space engine rather than by time alone.
 *
 * Each candidate's semantic diff (diffRulesets, the function `plan` and `rampart diff` use per host) is restricted to
 * the failing flows; a candidate is suspected when some failing packet went from accept (before) to drop or reject
 * (after). Suspected candidates rank first, then the rest by time (nearest before the start first). Pure: the
 * rulesets come parsed, the start time is an argument; no clock, store or file here.
 */
import { type DeciderInfo, decidersOf, describeSet, formatDecider, formatPacket, share } from '../analysis/describe.js';
import { type FlowSpec, flowPreference, parseFlowSpec, restrictToRuleset } from '../analysis/flow-spec.js';
import { diffRulesets } from '../analysis/incremental.js';
import { compileRuleset, createPacketSpace } from '../analysis/index.js';
import { type Intent, intentFlow } from '../analysis/intents.js';
import type { PacketSet } from '../analysis/types.js';
import type { Packet, Ruleset } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';

/** A flow the incident sees failing: a service's protocol, addresses and ports, from the failing vantage points. */
export interface FailingFlow {
  /** The service's name (for the "why"). */
  readonly service?: string;
  /** tcp, udp, ... (default tcp). */
  readonly proto?: string;
  /** The service's addresses (absent: any destination address). */
  readonly to?: readonly string[];
  readonly ports: readonly (number | string)[];
  /** The failing vantage points' addresses, or 'anywhere'. */
  readonly from: readonly string[] | 'anywhere';
}

export interface SuspectCandidate {
  readonly id: string;
  readonly kind: 'change' | 'drift';
  readonly host: string;
  /** ISO 8601 UTC: when it was applied (change) or seen (drift). */
  readonly at: string;
  readonly author: string | null;
  readonly approvers: readonly string[];
  readonly reason: string | null;
  readonly before: Ruleset;
  readonly after: Ruleset;
}

export interface SuspectedBreak {
  readonly hook: TraceHook;
  /** The failing flow broken (its service and ports), or the must-allow intent (its name and file:line:column). */
  readonly flow: string;
  /** The must-allow intent broken, when this break is an intent's. */
  readonly intent?: string;
  /** What became of it: drop or reject. */
  readonly to: 'drop' | 'reject';
  /** One failing packet it now drops, on one line. */
  readonly example: string;
  readonly examplePacket?: Packet;
  /** What decides those packets after the candidate (the dropping rule or policy), largest share first. */
  readonly droppedBy: readonly DeciderInfo[];
  /** What accepted them before (the rule removed or overtaken), largest share first. */
  readonly acceptedBefore: readonly DeciderInfo[];
  /** Failing packets it now drops, of all the failing flow's packets (`flowPackets`). */
  readonly packets: bigint;
  readonly flowPackets: bigint;
}

export interface RankedCandidate {
  readonly id: string;
  readonly kind: 'change' | 'drift';
  readonly host: string;
  readonly at: string;
  readonly author: string | null;
  readonly approvers: readonly string[];
  readonly reason: string | null;
  readonly suspected: boolean;
  readonly breaks: readonly SuspectedBreak[];
  /** The dropping rule of the first break, printable (`file:line: rule`, or the policy). */
  readonly rule?: string;
  /** The first break's example packet, printable. */
  readonly example?: string;
  /** A plain sentence: why it is suspected, or why not. */
  readonly why: string;
  /** When the engine could not evaluate it (the others are still ranked). */
  readonly error?: string;
}

export interface SuspectResult {
  readonly verdict: 'suspected' | 'none';
  /** One sentence: the suspect, or that no candidate explains the failure. */
  readonly text: string;
  readonly candidates: readonly RankedCandidate[];
}

export interface SuspectOptions {
  /** The hook paths to evaluate (default input and forward: the host's own services and what it routes). */
  readonly hooks?: readonly TraceHook[];
  /**
   * Must-allow intents (intents.yaml): a candidate is also suspected when it breaks one about the failing services
   * (its packets overlap theirs, from any source), on the intent's hook.
   */
  readonly intents?: readonly Intent[];
}

const DEFAULT_HOOKS: readonly TraceHook[] = ['input', 'forward'];

function flowName(f: FailingFlow): string {
  const proto = f.proto ?? 'tcp';
  const to = f.to && f.to.length > 0 ? ` to ${f.to.join(', ')}` : '';
  const from = f.from === 'anywhere' ? 'anywhere' : f.from.join(', ');
  return `${f.service ? `${f.service}: ` : ''}${proto} port ${f.ports.join(', ')}${to} from ${from}`;
}

/** Validates the failing flows into engine flow specs (a UserError names the flow and field otherwise). */
function flowSpecs(flows: readonly FailingFlow[]): FlowSpec[] {
  return flows.map((f, i) =>
    parseFlowSpec(
      {
        proto: f.proto ?? 'tcp',
        dport: [...f.ports],
        ...(f.to && f.to.length > 0 ? { to: [...f.to] } : {}),
        ...(f.from === 'anywhere' ? {} : { from: [...f.from] }),
        // A failing flow is new connections: established ones are another symptom.
        ctState: 'new',
      },
      { label: (field) => `failing flow ${i + 1}${f.service ? ` (${f.service})` : ''}: ${field}` },
    ),
  );
}

function timeOrder(startMs: number): (a: RankedCandidate, b: RankedCandidate) => number {
  // Before (or at) the start, nearest first; then those after the start, nearest first.
  const key = (c: RankedCandidate): [number, number] => {
    const t = Date.parse(c.at);
    return t <= startMs ? [0, startMs - t] : [1, t - startMs];
  };
  return (a, b) => {
    const [ga, da] = key(a);
    const [gb, db] = key(b);
    return ga - gb || da - db || a.id.localeCompare(b.id);
  };
}

function describeWho(c: SuspectCandidate): string {
  const by = c.author ? ` by ${c.author}` : '';
  const approved = c.approvers.length > 0 ? `, approved by ${c.approvers.join(', ')}` : '';
  const what = c.kind === 'drift' ? `out-of-band edit (drift) on ${c.host}` : `change ${c.id} on ${c.host}`;
  return `${what}${by}${approved}`;
}

/** What a candidate is checked against on one hook: a failing flow, or a must-allow intent about the services. */
interface Target {
  readonly name: string;
  readonly spec: FlowSpec;
  readonly intent?: Intent;
}

function evaluate(
  c: SuspectCandidate,
  flows: readonly FailingFlow[],
  specs: readonly FlowSpec[],
  opts: SuspectOptions,
) {
  const space = createPacketSpace([c.before, c.after], { interfaces: ['eth0'] });
  const tables = [...c.before.tables, ...c.after.tables];
  // Traffic from outside, as the intents see it: loopback packets come from the host itself.
  const outside = (spec: FlowSpec) => intentFlow(space, restrictToRuleset(spec, tables));
  // The services' packets from any source: a must-allow intent counts when it is about them.
  let services = space.none();
  for (const { from: _from, ...toServices } of specs) services = services.or(outside(toServices));
  const hooks = opts.hooks ?? DEFAULT_HOOKS;
  const targets = new Map<TraceHook, Target[]>();
  for (const hook of hooks)
    targets.set(
      hook,
      specs.map((spec, i) => ({ name: flowName(flows[i] as FailingFlow), spec })),
    );
  for (const intent of opts.intents ?? []) {
    if (intent.must !== 'allow' || outside(intent.spec).and(services).isEmpty()) continue;
    const hook = intent.hook ?? 'input';
    const name = `must-allow intent '${intent.name}' (${intent.file}:${intent.line}:${intent.column})`;
    targets.set(hook, [...(targets.get(hook) ?? []), { name, spec: intent.spec, intent }]);
  }
  const breaks: SuspectedBreak[] = [];
  for (const [hook, list] of targets) {
    const d = diffRulesets(c.before, c.after, { hook, space, limit: 1 });
    const lost = d.groups.filter((g) => g.from === 'accept' && (g.to === 'drop' || g.to === 'reject'));
    if (lost.length === 0) continue;
    for (const t of list) {
      const flow = outside(t.spec);
      for (const g of lost) {
        const hit: PacketSet = g.set.and(flow);
        if (hit.isEmpty()) continue;
        // The deciders of exactly the broken packets, on each side.
        const after = compileRuleset(c.after, { hook, space, region: hit });
        const before = compileRuleset(c.before, { hook, space, region: hit });
        const ex = describeSet(hit, { limit: 1, prefer: flowPreference(t.spec) }).flows[0]?.example;
        breaks.push({
          hook,
          flow: t.name,
          ...(t.intent ? { intent: t.intent.name } : {}),
          to: g.to as 'drop' | 'reject',
          example: ex ? formatPacket(ex) : '',
          ...(ex ? { examplePacket: ex } : {}),
          droppedBy: decidersOf(after, hit),
          acceptedBefore: decidersOf(before, hit),
          packets: hit.count(),
          flowPackets: flow.count(),
        });
      }
    }
  }
  // The failing flows' evidence first, then the intents'.
  return [...breaks.filter((b) => !b.intent), ...breaks.filter((b) => b.intent)];
}

function whyOf(c: SuspectCandidate, breaks: readonly SuspectedBreak[], opts: SuspectOptions): string {
  if (breaks.length === 0)
    return `${describeWho(c)}: its semantic diff turns none of the failing flows from accept to drop${opts.intents?.length ? ' and breaks no must-allow intent about them' : ''}`;
  const b = breaks[0] as SuspectedBreak;
  const drop = b.droppedBy[0];
  const acc = b.acceptedBefore[0];
  const now = drop ? formatDecider(drop) : b.to;
  const was = acc ? `; before it, ${formatDecider(acc)} accepted them` : '';
  const part = b.packets === b.flowPackets ? 'all of' : `${share(b.packets, b.flowPackets)} of`;
  const what = b.intent
    ? `breaks ${b.flow}: ${part} its packets go from accept to ${b.to}`
    : `turns ${part} ${b.flow} from accept to ${b.to}`;
  return `${describeWho(c)} ${what} (${b.hook} hook): e.g. ${b.example}, now decided by ${now}${was}`;
}

/**
 * Evaluates every candidate against the failing flows and ranks them: suspected first, then by time (nearest
 * before `startedAt` first). The verdict is `none`, with a sentence saying so, when no candidate explains it.
 */
export function findSuspects(
  flows: readonly FailingFlow[],
  candidates: readonly SuspectCandidate[],
  startedAt: string,
  opts: SuspectOptions = {},
): SuspectResult {
  const startMs = Date.parse(startedAt);
  if (Number.isNaN(startMs)) throw new Error(`suspect: startedAt '${startedAt}' is not an ISO 8601 time`);
  const specs = flowSpecs(flows);
  const ranked: RankedCandidate[] = candidates.map((c) => {
    const base = {
      id: c.id,
      kind: c.kind,
      host: c.host,
      at: c.at,
      author: c.author,
      approvers: c.approvers,
      reason: c.reason,
    };
    let breaks: SuspectedBreak[];
    try {
      breaks = evaluate(c, flows, specs, opts);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return { ...base, suspected: false, breaks: [], why: `${describeWho(c)}: not evaluated: ${msg}`, error: msg };
    }
    const first = breaks[0];
    const rule = first?.droppedBy[0];
    return {
      ...base,
      suspected: breaks.length > 0,
      breaks,
      ...(rule ? { rule: formatDecider(rule) } : {}),
      ...(first?.example ? { example: first.example } : {}),
      why: whyOf(c, breaks, opts),
    };
  });
  const byTime = timeOrder(startMs);
  ranked.sort((a, b) => Number(b.suspected) - Number(a.suspected) || byTime(a, b));
  const top = ranked[0];
  if (!top?.suspected) {
    const n = candidates.length;
    return {
      verdict: 'none',
      text:
        n === 0
          ? 'No change or drift in the look-back window: no change explains the failure; look at the service inside the host or the load balancer.'
          : `None of the ${n} change${n === 1 ? '' : 's'} and drifts in the look-back window turns a failing flow from accept to drop: no change explains the failure; look at the service inside the host or the load balancer.`,
      candidates: ranked,
    };
  }
  return { verdict: 'suspected', text: `Suspected: ${top.why}.`, candidates: ranked };
}
