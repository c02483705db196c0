/**
 * Semantic diff: every packet whose verdict differs between two rulesets, grouped by (old verdict, new verdict)
 * and described as a few flows with an example packet and the deciding rules on each side.
 *
 * Both rulesets are compiled in one shared packet space, so sets of the two sides combine exactly. Text changes that
 * do not change behaviour (reordering, splitting chains, renaming) give no change at all.
 */
import type { Packet } from '../firewall/model.js';
import type { TraceHook } from '../firewall/tracer.js';
import {
  type DeciderInfo,
  decidersOf,
  describeSet,
  type FlowDescription,
  formatDecider,
  formatPacket,
  share,
} from './describe.js';
import { REACH_OUTCOMES, type ReachOutcome } from './reach.js';
import type { CompiledRuleset, PacketSet } from './types.js';

export interface DiffFlow {
  readonly from: ReachOutcome;
  readonly to: ReachOutcome;
  readonly flow: FlowDescription;
  readonly old: readonly DeciderInfo[];
  readonly new: readonly DeciderInfo[];
}

export interface DiffGroup {
  readonly from: ReachOutcome;
  readonly to: ReachOutcome;
  readonly set: PacketSet;
  readonly packets: bigint;
  readonly flows: readonly DiffFlow[];
  /** Packets of the group in flows not shown. */
  readonly morePackets: bigint;
}

export interface DiffResult {
  readonly hook: TraceHook;
  readonly groups: readonly DiffGroup[];
  /** All packets whose outcome differs. */
  readonly changed: PacketSet;
}

export interface DiffOptions {
  /** At most this many flows per verdict pair (default 20). */
  readonly limit?: number;
  readonly prefer?: Partial<Packet>;
}

function outcomeSet(c: CompiledRuleset, o: ReachOutcome): PacketSet {
  return o === 'uncertain' ? c.uncertain() : c.verdict(o);
}

/** Both sides must be compiled for the same hook in one shared space (createPacketSpace([old, new])). */
export function diffCompiled(oldC: CompiledRuleset, newC: CompiledRuleset, opts: DiffOptions = {}): DiffResult {
  if (oldC.space !== newC.space) throw new Error('diff: both rulesets must be compiled in one shared packet space');
  const groups: DiffGroup[] = [];
  let changed = oldC.space.none();
  for (const a of REACH_OUTCOMES) {
    const oldSet = outcomeSet(oldC, a);
    if (oldSet.isEmpty()) continue;
    for (const b of REACH_OUTCOMES) {
      if (a === b) continue;
      const set = oldSet.and(outcomeSet(newC, b));
      if (set.isEmpty()) continue;
      changed = changed.or(set);
      const d = describeSet(set, {
        ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        prefer: opts.prefer ?? { l4proto: 6, ctState: 'new' },
      });
      groups.push({
        from: a,
        to: b,
        set,
        packets: d.packets,
        morePackets: d.morePackets,
        flows: d.flows.map((flow) => ({
          from: a,
          to: b,
          flow,
          old: a === 'uncertain' ? [] : decidersOf(oldC, flow.set),
          new: b === 'uncertain' ? [] : decidersOf(newC, flow.set),
        })),
      });
    }
  }
  return { hook: oldC.hook, groups, changed };
}

export function renderDiff(r: DiffResult): string {
  if (r.groups.length === 0) return `hook ${r.hook}: no change in behaviour\n`;
  const lines: string[] = [`hook ${r.hook}: behaviour changes`];
  for (const g of r.groups) {
    lines.push('');
    lines.push(`${g.from} -> ${g.to}:`);
    for (const f of g.flows) {
      lines.push(`  ${f.flow.text}: ${g.from} -> ${g.to}`);
      if (f.flow.example) lines.push(`      example: ${formatPacket(f.flow.example)}`);
      for (const d of f.old) lines.push(`      old ${d.verdict}: ${formatDecider(d)}`);
      for (const d of f.new) lines.push(`      new ${d.verdict}: ${formatDecider(d)}`);
    }
    if (g.morePackets > 0n)
      lines.push(`  ... and more (${share(g.morePackets, g.packets)} of these packets not shown)`);
  }
  return `${lines.join('\n')}\n`;
}

export function diffJson(r: DiffResult): unknown {
  return {
    hook: r.hook,
    changes: r.groups.flatMap((g) =>
      g.flows.map((f) => ({
        from: f.from,
        to: f.to,
        description: f.flow.text,
        packets: f.flow.packets,
        ...(f.flow.example ? { example: f.flow.example } : {}),
        old: f.old,
        new: f.new,
      })),
    ),
    totals: r.groups.map((g) => ({ from: g.from, to: g.to, packets: g.packets, notShown: g.morePackets })),
  };
}
