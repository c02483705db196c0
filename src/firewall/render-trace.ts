/** Human rendering of a trace result: the verdict first, then the packet, the path (indented by jump depth), notes. */
import { L4_PROTOCOLS } from './model.js';
import { TCP_FLAGS } from './symbols.js';
import type { DecidedBy, TracedPacket, TraceResult, TraceStep } from './tracer.js';

const PROTO_NAMES: ReadonlyMap<number, string> = new Map(
  // Later names win: 58 shows as icmpv6 rather than ipv6-icmp.
  Object.entries(L4_PROTOCOLS).map(([name, n]) => [n, name] as const),
);

/** Rule texts are shown as written; quotes only delimit them (escaping their own quotes would hurt reading). */
function quote(text: string): string {
  return `"${text}"`;
}

/** `rule filter/input #3 at /etc/nftables.conf:14: "tcp dport 22 drop"` or `policy drop of filter/input at ...`. */
export function describeDecider(d: DecidedBy | undefined): string {
  if (!d) return 'no base chain saw the packet';
  if (d.kind === 'rule') {
    const handle = d.handle !== undefined ? ` (handle ${d.handle})` : '';
    // nft rule texts carry their comment already; iptables lines carry it as -m comment.
    const comment = d.comment !== undefined && !d.text.includes(d.comment) ? ` comment ${quote(d.comment)}` : '';
    return `rule ${d.table}/${d.chain} #${d.position}${handle} at ${d.file}:${d.line}: ${quote(d.text)}${comment}`;
  }
  return `policy ${d.policy} of ${d.table}/${d.chain} at ${d.file}:${d.line}`;
}

function flagsText(flags: number): string {
  const names = Object.entries(TCP_FLAGS)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  return names.length > 0 ? names.join(',') : '0';
}

export function describePacket(p: TracedPacket): string {
  const proto = PROTO_NAMES.get(p.l4proto) ?? String(p.l4proto);
  const host = (a: string, port: number | undefined) =>
    port === undefined ? a : p.family === 'ipv6' ? `[${a}]:${port}` : `${a}:${port}`;
  const parts = [`${p.family} ${proto} ${host(p.saddr, p.sport)} -> ${host(p.daddr, p.dport)}`];
  if (p.icmpType !== undefined)
    parts.push(`type ${p.icmpType}${p.icmpCode !== undefined ? ` code ${p.icmpCode}` : ''}`);
  if (p.iif !== undefined) parts.push(`iif ${p.iif}`);
  if (p.oif !== undefined) parts.push(`oif ${p.oif}`);
  parts.push(`ct ${p.ctState}`, `mark 0x${p.mark.toString(16)}`);
  if (p.tcpFlags !== undefined) parts.push(`flags ${flagsText(p.tcpFlags)}`);
  if (p.daddrType !== 'unicast') parts.push(`daddr type ${p.daddrType}`);
  if (p.saddrType !== 'unicast') parts.push(`saddr type ${p.saddrType}`);
  return parts.join('  ');
}

function stepLine(s: TraceStep): string {
  switch (s.kind) {
    case 'chain':
      return `  ${s.hook}: ${s.family} ${s.table}/${s.chain}  (${s.type}, priority ${s.priority}${s.runsAt !== undefined ? ` run by the nat core at ${s.runsAt}` : ''}, policy ${s.policy})`;
    case 'skip':
      return `  ${s.hook}: ${s.family} ${s.table}/${s.chain}  skipped: ${s.reason}`;
    case 'rule': {
      const pad = '  '.repeat(s.depth + 2);
      const effect = `${s.effect}${s.target !== undefined ? ` ${s.target}` : ''}${s.detail !== undefined ? ` (${s.detail})` : ''}`;
      const assumed = s.opaque ? `  [assumed to match: ${s.opaque.join('; ')}]` : '';
      const comment = s.comment !== undefined ? `  comment ${quote(s.comment)}` : '';
      return `${pad}${s.chain} #${s.position}  ${s.file}:${s.line}  ${quote(s.text)}  => ${effect}${assumed}${comment}`;
    }
    case 'jump':
    case 'goto':
      return `${'  '.repeat(s.depth + 2)}${s.kind} ${s.from} -> ${s.to}`;
    case 'return':
      return `${'  '.repeat(s.depth + 2)}return ${s.from} -> ${s.to}${s.implicit ? ' (end of chain)' : ''}`;
    case 'policy':
      return `    policy ${s.policy} (end of ${s.table}/${s.chain})`;
    case 'rewrite':
      return `${'  '.repeat(s.depth + 2)}rewrite ${s.field}: ${s.from} -> ${s.to}${s.unknown ? ' (not known: trace continues with the old value)' : ''}`;
  }
}

export function renderTrace(r: TraceResult): string {
  const out: string[] = [];
  out.push(`verdict: ${r.verdict.toUpperCase()}  (${describeDecider(r.decidedBy)})`);
  const unknown = r.opaque.filter((o) => o.fresh === undefined);
  const stateful = r.opaque.filter((o) => o.fresh !== undefined);
  if (unknown.length > 0) {
    out.push(`uncertain: the verdict assumes ${unknown.length} match(es) the model cannot decide hold:`);
    for (const o of unknown) {
      out.push(`  ${quote(o.text)} (${o.category}: ${o.reason}) at ${o.rule.file}:${o.rule.line}`);
    }
  } else if (r.uncertain) {
    out.push('uncertain: see notes');
  }
  if (stateful.length > 0) {
    out.push('for an ordinary new connection from a fresh source:');
    for (const o of stateful) {
      out.push(
        `  ${quote(o.text)} ${o.fresh ? 'matches' : 'does not match'} (${o.reason}) at ${o.rule.file}:${o.rule.line}`,
      );
    }
  }
  for (const a of r.alternatives ?? []) {
    out.push(`  ${a.conditions.join('; ')}: ${a.verdict.toUpperCase()}  (${describeDecider(a.decidedBy)})`);
  }
  out.push(`packet: ${describePacket(r.packet)}`);
  out.push(`path (${r.hooks.join(' -> ')}):`);
  if (r.path.length === 0) out.push('  (no base chains)');
  for (const s of r.path) out.push(stepLine(s));
  if (r.notes.length > 0) {
    out.push('notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
