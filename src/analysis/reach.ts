/**
 * Reachability: within a flow spec, which packets a compiled ruleset accepts, drops, rejects, and where the answer
 * depends on opaque matches. Each part is described as a few flows with an example packet and the deciding rules.
 */
import type { FinalVerdict, Packet } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';
import { type Description, describeSet, descriptionJson, renderDescription, share } from './describe.js';
import { type FlowSpec, flowPreference, flowSet } from './flow-spec.js';
import type { CompiledRuleset, PacketSet } from './types.js';

export type ReachOutcome = FinalVerdict | 'uncertain';
export const REACH_OUTCOMES: readonly ReachOutcome[] = ['accept', 'drop', 'reject', 'uncertain'];

export interface ReachResult {
  readonly hook: TraceHook;
  /** The queried packets. */
  readonly space: PacketSet;
  readonly packets: bigint;
  readonly outcomes: Readonly<Record<ReachOutcome, Description>>;
}

export interface ReachOptions {
  readonly limit?: number;
  readonly prefer?: Partial<Packet>;
}

export function reach(compiled: CompiledRuleset, spec: FlowSpec, opts: ReachOptions = {}): ReachResult {
  return reachSet(compiled, flowSet(compiled.space, spec), { prefer: flowPreference(spec), ...opts });
}

export function reachSet(compiled: CompiledRuleset, query: PacketSet, opts: ReachOptions = {}): ReachResult {
  const part = (o: ReachOutcome): PacketSet =>
    (o === 'uncertain' ? compiled.uncertain() : compiled.verdict(o)).and(query);
  const describe = (o: ReachOutcome) =>
    describeSet(part(o), {
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.prefer ? { prefer: opts.prefer } : {}),
      ...(o === 'uncertain' ? {} : { compiled }),
    });
  return {
    hook: compiled.hook,
    space: query,
    packets: query.count(),
    outcomes: {
      accept: describe('accept'),
      drop: describe('drop'),
      reject: describe('reject'),
      uncertain: describe('uncertain'),
    },
  };
}

const TITLES: Record<ReachOutcome, string> = {
  accept: 'accepted',
  drop: 'dropped',
  reject: 'rejected',
  uncertain: 'uncertain (depends on rate limits, unknown sets or other opaque matches)',
};

export function renderReach(r: ReachResult): string {
  let out = `hook ${r.hook}:${r.packets === 0n ? ' the query is empty' : ''}\n`;
  for (const o of REACH_OUTCOMES) {
    const d = r.outcomes[o];
    if (o === 'uncertain' && d.packets === 0n) continue;
    out += `${TITLES[o]}: ${d.packets === 0n ? 'none' : `${share(d.packets, r.packets)} of the query`}\n`;
    out += renderDescription(d);
  }
  return out;
}

export function reachJson(r: ReachResult): unknown {
  return {
    hook: r.hook,
    packets: r.packets,
    counts: Object.fromEntries(REACH_OUTCOMES.map((o) => [o, r.outcomes[o].packets])),
    accept: descriptionJson(r.outcomes.accept),
    drop: descriptionJson(r.outcomes.drop),
    reject: descriptionJson(r.outcomes.reject),
    uncertain: descriptionJson(r.outcomes.uncertain),
  };
}
