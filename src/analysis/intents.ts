/**
 * Intents: declared must-allow / must-deny flows, checked exactly against a compiled ruleset. A violated intent
 * comes with a counterexample packet and the rule that decided it.
 *
 * The intents file is YAML: a list (or `intents:` holding a list) of
 *   - name: shop https
 *     must: allow            # or deny
 *     from: any              # CIDR list or any
 *     to: 192.0.2.10
 *     proto: tcp
 *     dport: 80,443          # ports and ranges, or a YAML list
 *     iif: eth0              # optional; also oif, sport, ct-state (default new), family, icmp-type, hook
 *
 * Parsing is pure (text in, intents out): the CLI reads the file. Errors name file:line:column, the field, the
 * value and what would be valid.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { didYouMean } from '../config/did-you-mean.js';
import { ParseError, UserError } from '../errors.js';
import type { L3, Packet } from '../firewall/model.js';
import { TRACE_HOOKS, type TraceHook } from '../firewall/tracer.js';
import { formatAddressRange } from '../firewall/values.js';
import {
  type DeciderInfo,
  decidersOf,
  describeSet,
  type FlowDescription,
  formatDecider,
  formatPacket,
  share,
} from './describe.js';
import {
  type FlowField,
  type FlowSpec,
  type FlowSpecInput,
  flowPreference,
  flowSet,
  parseFlowSpec,
} from './flow-spec.js';
import type { CompiledRuleset, PacketSet, PacketSpace } from './types.js';

export interface Intent {
  readonly name: string;
  readonly must: 'allow' | 'deny';
  readonly hook?: TraceHook;
  readonly spec: FlowSpec;
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

const FIELD_OF_KEY: Readonly<Record<string, FlowField>> = {
  family: 'family',
  from: 'from',
  to: 'to',
  proto: 'proto',
  sport: 'sport',
  dport: 'dport',
  iif: 'iif',
  oif: 'oif',
  'ct-state': 'ctState',
  'icmp-type': 'icmpType',
};
const KEYS = ['name', 'must', 'hook', ...Object.keys(FIELD_OF_KEY)];

/** Parses an intents file; every problem is a ParseError at file:line:column. */
export function parseIntents(text: string, file: string): Intent[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const pos = (offset: number | undefined) => lineCounter.linePos(offset ?? 0);
  const err = (node: Node | null | undefined, token: string, expected: string, message?: string): ParseError => {
    const p = pos(node?.range?.[0]);
    return new ParseError(file, p.line, p.col, token, expected, message);
  };
  const first = doc.errors[0];
  if (first) {
    const p = first.linePos?.[0] ?? pos(first.pos[0]);
    const msg = first.message.split('\n')[0] ?? first.message;
    throw new ParseError(file, p.line, p.col, '', 'valid YAML', `invalid YAML: ${msg}`);
  }
  let root = doc.contents as Node | null;
  if (isMap(root)) {
    const list = root.get('intents', true) as Node | undefined;
    if (!list) throw err(root, 'a map', "a list of intents (or a map with key 'intents')");
    root = list;
  }
  if (root === null || root === undefined) return [];
  if (!isSeq(root)) throw err(root, String((root as { toJSON?: () => unknown }).toJSON?.() ?? ''), 'a list of intents');
  const names = new Set<string>();
  return root.items.map((item, index) => parseIntentEntry(item, index, { file, lineCounter }, names));
}

/** Where intent entries come from: the intents file, or the `intents:` section of rampart.yaml. */
export interface IntentSource {
  readonly file: string;
  /** The line counter the document was parsed with (offsets to line:column). */
  readonly lineCounter: LineCounter;
  /**
   * The field path of the list in a larger document (`intents` in rampart.yaml): messages then start with the
   * entry's path (`intents[1].dport: ...`) and unknown fields get a "did you mean". The intents file has none.
   */
  readonly path?: string;
}

/** Intent fields, for "did you mean" and docs. */
export const INTENT_FIELDS: readonly string[] = KEYS;

/**
 * Parses one entry of an intents list (a YAML node), shared by the intents file and rampart.yaml. `names` holds the
 * names seen so far in the list (duplicates are errors) and receives this one. Throws a ParseError at the entry's
 * file:line:column.
 */
export function parseIntentEntry(item: unknown, index: number, src: IntentSource, names: Set<string>): Intent {
  const { file } = src;
  const pos = (offset: number | undefined) => src.lineCounter.linePos(offset ?? 0);
  const err = (node: Node | null | undefined, token: string, expected: string, message?: string): ParseError => {
    const p = pos(node?.range?.[0]);
    return new ParseError(file, p.line, p.col, token, expected, message);
  };
  // In rampart.yaml every message names the field path; the intents file keeps its shorter messages.
  const where = src.path === undefined ? undefined : `${src.path}[${index}]`;
  const label = (key: string | undefined, message: string): string =>
    where === undefined ? message : `${where}${key === undefined ? '' : `.${key}`}: ${message}`;
  const node = item as Node;
  if (!isMap(node)) {
    const token = String(isScalar(node) ? node.value : isSeq(node) ? 'a list' : '');
    const expected = 'an intent: a map with name, must and flow fields';
    throw err(node, token, expected, where === undefined ? undefined : label(undefined, `unexpected '${token}'`));
  }
  const at = pos(node.range?.[0]);
  const values = new Map<string, { value: unknown; node: Node }>();
  for (const pair of node.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    if (!KEYS.includes(key)) {
      const hint = where === undefined ? '' : didYouMean(key, KEYS);
      throw err(keyNode, key, `one of ${KEYS.join(', ')}`, label(key, `unknown intent field '${key}'${hint}`));
    }
    const valueNode = (pair.value ?? keyNode) as Node;
    values.set(key, { value: pair.value === null ? null : (pair.value as Node).toJSON(), node: valueNode });
  }
  const nameV = values.get('name');
  const name = nameV === undefined ? `intent ${index + 1}` : String(nameV.value);
  if (nameV && (typeof nameV.value !== 'string' || nameV.value.trim() === '')) {
    throw err(nameV.node, String(nameV.value), 'a non-empty name', label('name', 'name: not a non-empty string'));
  }
  if (names.has(name)) {
    throw err(nameV?.node ?? node, name, 'a unique name', label('name', `duplicate intent name '${name}'`));
  }
  names.add(name);
  const mustV = values.get('must');
  if (!mustV)
    throw err(node, name, "a 'must' field: allow or deny", label(undefined, `intent '${name}' has no 'must'`));
  if (mustV.value !== 'allow' && mustV.value !== 'deny') {
    throw err(
      mustV.node,
      String(mustV.value),
      'allow or deny',
      label('must', `must: '${String(mustV.value)}' is not allow or deny`),
    );
  }
  const hookV = values.get('hook');
  if (hookV && !(TRACE_HOOKS as readonly unknown[]).includes(hookV.value)) {
    throw err(
      hookV.node,
      String(hookV.value),
      `one of ${TRACE_HOOKS.join(', ')}`,
      label('hook', `hook: unknown hook '${String(hookV.value)}'`),
    );
  }
  const input: Record<string, unknown> = {};
  const keyOfField = new Map<FlowField, string>();
  for (const [key, field] of Object.entries(FIELD_OF_KEY)) {
    const v = values.get(key);
    if (v) {
      input[field] = v.value;
      keyOfField.set(field, key);
    }
  }
  // Intents are about opening connections: with every ct state, any stateful ruleset would "accept" established
  // packets of a denied service and "drop" invalid packets of an allowed one. Write ct-state to include others.
  if (input.ctState === undefined) input.ctState = 'new';
  let spec: FlowSpec;
  try {
    spec = parseFlowSpec(input as FlowSpecInput, { label: (field) => keyOfField.get(field) ?? field });
  } catch (e) {
    if (!(e instanceof UserError) || typeof e.details.field !== 'string') throw e;
    // Re-throw at the value's position in the file, as a ParseError naming the field, the value and what is valid.
    const key = keyOfField.get(e.details.field as FlowField) ?? String(e.details.field);
    const v = values.get(key);
    const p = pos(v?.node.range?.[0] ?? node.range?.[0]);
    const why = String(e.details.why ?? '');
    const cut = why.indexOf('; expected ');
    const reason = cut >= 0 ? why.slice(0, cut) : why;
    const expected = cut >= 0 ? why.slice(cut + '; expected '.length) : `a valid ${key}`;
    const value = String(e.details.value ?? '');
    const message =
      where === undefined
        ? `intent '${name}': ${key} '${value}': ${reason}`
        : label(key, `'${value}': ${reason} (intent '${name}')`);
    throw new ParseError(file, p.line, p.col, value, expected, message);
  }
  return {
    name,
    must: mustV.value,
    ...(hookV ? { hook: hookV.value as TraceHook } : {}),
    spec,
    file,
    line: at.line,
    column: at.col,
  };
}

const LOOPBACK_SOURCES: readonly { family: L3; lo: bigint; hi: bigint }[] = [
  { family: 'ipv4', lo: 0x7f000000n, hi: 0x7fffffffn },
  { family: 'ipv6', lo: 1n, hi: 1n },
];

/**
 * An intent is about traffic that reaches the host from outside unless it says otherwise: packets on the loopback
 * interface come from the host itself (`iifname "lo" accept`, in nearly every ruleset, is not a path for
 * 203.0.113.7). They stay in the flow when the intent names lo (`iif: lo`) or only loopback sources. When the space
 * does not tell lo from other interfaces (no rule mentions it), no rule treats it apart and nothing is removed.
 */
/** The packets an intent is about: its flow, without loopback traffic unless it asks for it (see outsideTraffic). */
export function intentFlow(space: PacketSpace, spec: FlowSpec): PacketSet {
  return outsideTraffic(space, spec, flowSet(space, spec));
}

function outsideTraffic(space: PacketSpace, spec: FlowSpec, flow: PacketSet): PacketSet {
  if (spec.iif?.some((i) => 'lo'.startsWith(i.value) && (i.wildcard || i.value === 'lo'))) return flow;
  const fromLoopback = spec.from?.every((r) =>
    LOOPBACK_SOURCES.some((l) => l.family === r.family && r.lo >= l.lo && r.hi <= l.hi),
  );
  if (fromLoopback) return flow;
  const lo = space.fromCube({ iifname: [{ kind: 'name', value: 'lo', wildcard: false }] });
  const other = space.fromCube({ iifname: [{ kind: 'name', value: 'rampart-unnamed-if', wildcard: false }] });
  if (lo.equals(other)) return flow;
  return flow.minus(lo);
}

/** The source addresses of a set, per family, as text: `198.51.100.0/24, 2001:db8::/32`. */
function sourcesText(
  space: PacketSpace,
  set: PacketSet,
): { text: string; ranges: { family: L3; lo: bigint; hi: bigint }[] } {
  const ranges: { family: L3; lo: bigint; hi: bigint }[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const fam = set.and(space.fromCube({ nfproto: [{ kind: 'symbol', value: family }] }));
    if (fam.isEmpty()) continue;
    const vs = space.fieldValues(fam, family === 'ipv4' ? 'ip.saddr' : 'ip6.saddr', 64);
    if (!vs) return { text: '', ranges: [] };
    const sorted = vs.map(([lo, hi]) => ({ family, lo, hi })).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    for (const r of sorted) {
      const last = ranges[ranges.length - 1];
      if (last && last.family === family && r.lo <= last.hi + 1n) {
        if (r.hi > last.hi) last.hi = r.hi;
      } else ranges.push({ ...r });
    }
  }
  const parts = ranges.map((r) => formatAddressRange(r.family, r.lo, r.hi));
  return {
    text: parts.length > 4 ? `${parts.slice(0, 4).join(', ')} and ${parts.length - 4} more` : parts.join(', '),
    ranges,
  };
}

/**
 * What a violation covers, in words people can use: `accepted from every source`, `not accepted from any source
 * except 198.51.100.0/24`, `accepted from 203.0.113.0/24`; a share of the packets only when the sources do not say it
 * (the violation depends on ports or interfaces).
 */
export function violationText(
  space: PacketSpace,
  must: 'allow' | 'deny',
  flow: PacketSet,
  violating: PacketSet,
): string {
  const what = must === 'allow' ? 'not accepted' : 'accepted';
  if (violating.equals(flow)) return `${what} from ${must === 'allow' ? 'any' : 'every'} source`;
  const bad = sourcesText(space, violating);
  const fine = sourcesText(space, flow.minus(violating));
  const all = sourcesText(space, flow);
  // Every source of the flow is affected for some of its packets: the sources do not tell the violation apart.
  if (bad.text === '' || bad.text === all.text)
    return `${share(violating.count(), flow.count())} of its packets are ${what}`;
  // Sources entirely fine are the exception when they are the shorter list.
  const overlap = fine.ranges.some((f) =>
    bad.ranges.some((x) => x.family === f.family && x.lo <= f.hi && f.lo <= x.hi),
  );
  if (fine.text !== '' && fine.ranges.length < bad.ranges.length && !overlap) {
    return `${what} from ${must === 'allow' ? 'any' : 'every'} source except ${fine.text}`;
  }
  return `${what} from ${bad.text}`;
}

export type IntentStatus = 'holds' | 'violated' | 'uncertain';

export interface IntentResult {
  readonly intent: Intent;
  readonly hook: TraceHook;
  readonly status: IntentStatus;
  /** Packets of the intent's flow. */
  readonly packets: bigint;
  /** Packets that violate it (certainly). */
  readonly violating: PacketSet;
  /** Packets whose fate depends on opaque matches. */
  readonly uncertain: PacketSet;
  readonly counterexample?: Packet;
  /** Who decided the counterexample. */
  readonly decidedBy?: DeciderInfo;
  /** The violation in words: `not accepted from any source`, `accepted from every source except 198.51.100.0/24`. */
  readonly summary?: string;
  readonly flows: readonly FlowDescription[];
}

/** Checks intents; `compile(hook)` gives the ruleset compiled for a hook (the caller caches). */
export function checkIntents(
  intents: readonly Intent[],
  compile: (hook: TraceHook) => CompiledRuleset,
  defaultHook: TraceHook = 'input',
  limit = 5,
): IntentResult[] {
  return intents.map((intent) => {
    const hook = intent.hook ?? defaultHook;
    const c = compile(hook);
    const flow = intentFlow(c.space, intent.spec);
    const bad = intent.must === 'allow' ? c.verdict('drop').or(c.verdict('reject')) : c.verdict('accept');
    const violating = flow.and(bad);
    const uncertain = flow.and(c.uncertain());
    const prefer = flowPreference(intent.spec);
    const status: IntentStatus = !violating.isEmpty() ? 'violated' : !uncertain.isEmpty() ? 'uncertain' : 'holds';
    const base = { intent, hook, status, packets: flow.count(), violating, uncertain };
    if (status !== 'violated') return { ...base, flows: [] };
    // The first described flow's example: the largest violating flow, with readable addresses.
    const d = describeSet(violating, { limit, compiled: c, prefer });
    const counterexample = d.flows[0]?.example ?? violating.example(prefer);
    const decidedBy = counterexample ? decidersOf(c, c.space.fromPacket(counterexample))[0] : undefined;
    return {
      ...base,
      summary: violationText(c.space, intent.must, flow, violating),
      flows: d.flows,
      ...(counterexample ? { counterexample } : {}),
      ...(decidedBy ? { decidedBy } : {}),
    };
  });
}

export function renderIntents(results: readonly IntentResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const i = r.intent;
    const head = `${i.file}:${i.line}: ${i.name} (must ${i.must}, hook ${r.hook})`;
    if (r.status === 'holds') {
      lines.push(`ok        ${head}`);
      continue;
    }
    if (r.status === 'uncertain') {
      lines.push(`UNCERTAIN ${head}: ${share(r.uncertain.count(), r.packets)} of its packets depend on opaque matches`);
      continue;
    }
    lines.push(
      `VIOLATED  ${head}: ${r.summary ?? `${share(r.violating.count(), r.packets)} of its packets are ${i.must === 'allow' ? 'not accepted' : 'accepted'}`}`,
    );
    if (r.counterexample) lines.push(`    counterexample: ${formatPacket(r.counterexample)}`);
    if (r.decidedBy) lines.push(`    decided ${r.decidedBy.verdict} by ${formatDecider(r.decidedBy)}`);
    for (const f of r.flows) lines.push(`    ${f.text}`);
  }
  const violated = results.filter((r) => r.status === 'violated').length;
  lines.push('');
  lines.push(
    violated === 0
      ? `all ${results.length} intents hold${results.some((r) => r.status === 'uncertain') ? ' (some only uncertainly)' : ''}`
      : `${violated} of ${results.length} intents violated`,
  );
  return `${lines.join('\n')}\n`;
}

export function intentsJson(results: readonly IntentResult[]): unknown {
  return {
    ok: results.every((r) => r.status !== 'violated'),
    intents: results.map((r) => ({
      name: r.intent.name,
      must: r.intent.must,
      hook: r.hook,
      file: r.intent.file,
      line: r.intent.line,
      status: r.status,
      ...(r.summary ? { summary: r.summary } : {}),
      packets: r.packets,
      violatingPackets: r.violating.count(),
      uncertainPackets: r.uncertain.count(),
      ...(r.counterexample ? { counterexample: r.counterexample } : {}),
      ...(r.decidedBy ? { decidedBy: r.decidedBy } : {}),
      flows: r.flows.map((f) => ({
        description: f.text,
        packets: f.packets,
        ...(f.example ? { example: f.example } : {}),
      })),
    })),
  };
}
