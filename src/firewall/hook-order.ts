/**
 * Which base chains run on a hook, and in what order: shared by the tracer (one packet) and the packet-space
 * compiler (every packet), so both walk netfilter exactly the same way.
 */
import type { Chain, Family, L3, Ruleset, Table } from './model.js';
import type { TraceHook } from './tracer.js';

export interface BaseRef {
  readonly table: Table;
  readonly chain: Chain;
  /** Registration order: position in the ruleset (tables, then chains, as loaded). */
  readonly order: number;
}

export type HookEntry =
  | { readonly kind: 'chain'; readonly base: BaseRef }
  | { readonly kind: 'nat'; readonly priority: number; readonly members: readonly BaseRef[] };

/** Priorities of the nat core's own hook, inside which all nat-type chains run. */
export const NAT_CORE_PRIORITY: Readonly<Record<TraceHook, number>> = {
  prerouting: -100,
  output: -100,
  input: 100,
  postrouting: 100,
  forward: 0,
};

/** Priority ascending; equal priorities run the later-registered hook first. */
export function byPriority(pa: number, oa: number, pb: number, ob: number): number {
  return pa !== pb ? pa - pb : ob - oa;
}

/** Whether a table of family `f` sees packets of layer-3 protocol `l3`. */
export function familyMatches(f: Family, l3: L3): boolean {
  return f === 'inet' || (f === 'ip' && l3 === 'ipv4') || (f === 'ip6' && l3 === 'ipv6');
}

/**
 * What runs on a hook for a packet family, in the kernel's order:
 * - hooks by priority; on equal priority the kernel puts a new hook BEFORE the ones already there
 *   (nf_hook_entries_grow), so the later-registered chain runs first. A ruleset loaded from a file registers its
 *   chains in the order written (tables, then chains), so ties run in reverse file order. The kernel agreement
 *   suite (test/kernel) checks this on real netfilter.
 * - nat chains run inside the nat core's hook (priority -100 for prerouting/output, 100 for input/postrouting),
 *   registered with the first nat chain of the family; among themselves they are ordered by their own priority.
 */
export function hookEntries(rs: Ruleset, hook: TraceHook, l3: L3): HookEntry[] {
  const chains: BaseRef[] = [];
  const nat: BaseRef[] = [];
  let order = 0;
  let firstNat: number | undefined;
  for (const table of rs.tables) {
    if (table.outOfScope || !familyMatches(table.family, l3)) {
      order += table.chains.length;
      continue;
    }
    for (const chain of table.chains) {
      order++;
      const b = chain.base;
      if (!b) continue;
      const isNat = b.type === 'nat' && hook !== 'forward';
      if (isNat) firstNat ??= order;
      if (b.hook !== hook) continue;
      (isNat ? nat : chains).push({ table, chain, order });
    }
  }
  const prio = (r: BaseRef) => r.chain.base!.priority;
  const entries: { e: HookEntry; priority: number; order: number }[] = chains.map((base) => ({
    e: { kind: 'chain', base },
    priority: prio(base),
    order: base.order,
  }));
  if (nat.length > 0) {
    nat.sort((a, b) => byPriority(prio(a), a.order, prio(b), b.order));
    const priority = NAT_CORE_PRIORITY[hook];
    entries.push({ e: { kind: 'nat', priority, members: nat }, priority, order: firstNat ?? 0 });
  }
  entries.sort((a, b) => byPriority(a.priority, a.order, b.priority, b.order));
  return entries.map((x) => x.e);
}

/** Whether the kernel has an input / output device for the packet at a hook on this path. */
export function devices(hook: TraceHook, path: readonly TraceHook[]): { iif: boolean; oif: boolean } {
  const locallyGenerated = path[0] === 'output';
  switch (hook) {
    case 'prerouting':
    case 'input':
      return { iif: true, oif: false };
    case 'forward':
      return { iif: true, oif: true };
    case 'output':
      return { iif: false, oif: true };
    case 'postrouting':
      return { iif: !locallyGenerated, oif: true };
  }
}
