/**
 * Live mode of `rampart audit`: reads the running ruleset and the listening sockets of this host or of a network
 * namespace. Read-only: the only commands run are `nft -j list ruleset`, `iptables-save`, `ip6tables-save` and
 * `ss` (or /proc/net/{tcp,udp}{,6}); each without a shell, with a timeout, through `ip netns exec NAME` for a
 * namespace.
 *
 * Which ruleset: nftables first (it also shows iptables-nft's tables); when nft is missing or has no tables, the
 * iptables-save pair (legacy iptables keeps its rules outside nftables).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ListeningSocket } from '../analysis/audit/types.js';
import { UserError } from '../errors.js';
import type { Ruleset } from '../firewall/model.js';
import { mergeRulesets, parseRuleset } from '../firewall/parse.js';
import { type ExecResult, type Executor, localExecutor, netnsExecutor } from '../lab/executor.js';

export interface LiveOptions {
  /** A network namespace (`ip netns` name); default: the caller's own. */
  readonly netns?: string;
  /** Per command; default 20 s. */
  readonly timeoutMs?: number;
}

export interface LiveRuleset {
  readonly ruleset: Ruleset;
  /** `live:host` or `live:<netns>`: what findings are located in. */
  readonly file: string;
  /** Which tool the ruleset came from. */
  readonly source: 'nft' | 'iptables-save';
}

const NETNS_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** The label of a live source, used as the ruleset's file name. */
export function liveLabel(opts: LiveOptions): string {
  return `live:${opts.netns ?? 'host'}`;
}

function executorFor(opts: LiveOptions): Executor {
  if (opts.netns === undefined) return localExecutor();
  if (!NETNS_RE.test(opts.netns)) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--netns '${opts.netns}': not a namespace name; expected letters, digits, '.', '_' or '-' (see ip netns list)`,
      { flag: '--netns', value: opts.netns },
    );
  }
  // `ip netns` keeps its namespaces as files here; checking first gives a clear message instead of ip's.
  if (!existsSync(`/run/netns/${opts.netns}`)) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `--netns ${opts.netns}: no such network namespace (ip netns list shows the existing ones)`,
      { flag: '--netns', value: opts.netns },
    );
  }
  return netnsExecutor(opts.netns);
}

type Ran =
  | { readonly kind: 'ok'; readonly result: ExecResult }
  | { readonly kind: 'missing' }
  | { readonly kind: 'failed'; readonly message: string };

/** Runs a read-only command; a missing tool is an answer, not an exception. */
async function tryRun(ex: Executor, argv: readonly string[], opts: LiveOptions): Promise<Ran> {
  let result: ExecResult;
  try {
    result = await ex.run(argv, { allowFailure: true, timeoutMs: opts.timeoutMs ?? 20_000 });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/ENOENT/.test(message)) return { kind: 'missing' };
    return { kind: 'failed', message: `${argv.join(' ')} (${ex.where}): ${message}` };
  }
  // `ip netns exec` reports a missing program itself (exit 255).
  if (result.code !== 0 && /exec of "[^"]+" failed: No such file or directory/.test(result.stderr)) {
    return { kind: 'missing' };
  }
  if (result.code !== 0) {
    const err = result.stderr.trim().split('\n').slice(0, 3).join('; ');
    const hint = /Operation not permitted|Permission denied/i.test(err) ? ' (reading the firewall needs root)' : '';
    return { kind: 'failed', message: `${argv.join(' ')} (${ex.where}) exited ${result.code}: ${err}${hint}` };
  }
  return { kind: 'ok', result };
}

function hasNftTables(json: string): boolean {
  try {
    const doc = JSON.parse(json) as { nftables?: unknown[] };
    return (doc.nftables ?? []).some((o) => typeof o === 'object' && o !== null && 'table' in o);
  } catch {
    return false;
  }
}

function hasIptablesTables(text: string): boolean {
  return /^\*\w+/m.test(text);
}

/** The running ruleset: `nft -j list ruleset`, else `iptables-save` + `ip6tables-save`. */
export async function readLiveRuleset(opts: LiveOptions = {}): Promise<LiveRuleset> {
  const ex = executorFor(opts);
  const file = liveLabel(opts);
  const nft = await tryRun(ex, ['nft', '-j', 'list', 'ruleset'], opts);
  if (nft.kind === 'ok' && hasNftTables(nft.result.stdout)) {
    return { ruleset: parseRuleset(nft.result.stdout, file, { format: 'nft-json' }), file, source: 'nft' };
  }
  const v4 = await tryRun(ex, ['iptables-save'], opts);
  const v6 = await tryRun(ex, ['ip6tables-save'], opts);
  const parts: Ruleset[] = [];
  if (v4.kind === 'ok' && hasIptablesTables(v4.result.stdout)) {
    parts.push(parseRuleset(v4.result.stdout, file, { format: 'iptables-save', family: 'ipv4' }));
  }
  if (v6.kind === 'ok' && hasIptablesTables(v6.result.stdout)) {
    parts.push(parseRuleset(v6.result.stdout, `${file}/ipv6`, { format: 'iptables-save', family: 'ipv6' }));
  }
  if (parts.length > 0) return { ruleset: mergeRulesets(parts), file, source: 'iptables-save' };
  // No tables anywhere: an open host. Report it from whichever tool answered.
  if (nft.kind === 'ok') {
    return { ruleset: parseRuleset(nft.result.stdout, file, { format: 'nft-json' }), file, source: 'nft' };
  }
  if (v4.kind === 'ok') {
    return {
      ruleset: parseRuleset(v4.result.stdout, file, { format: 'iptables-save', family: 'ipv4' }),
      file,
      source: 'iptables-save',
    };
  }
  const failures = [nft, v4, v6].filter((r): r is Extract<Ran, { kind: 'failed' }> => r.kind === 'failed');
  if (failures.length > 0) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `cannot read the live ruleset: ${failures.map((f) => f.message).join('; ')}`,
    );
  }
  throw new UserError(
    'RAMPART_ERR_USAGE',
    `cannot read the live ruleset: neither nft nor iptables-save is installed${opts.netns ? ` (netns ${opts.netns})` : ''}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Listening sockets

/** `0.0.0.0:8080`, `[::1]:22`, `*:80`, `127.0.0.53%lo:53`, `[fe80::1]%eth0:123` -> address and port. */
function splitEndpoint(text: string): { address: string; port: number } | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(text.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  let address = text.slice(0, colon);
  const pct = address.indexOf('%');
  if (pct >= 0) address = address.slice(0, pct);
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return { address, port };
}

/**
 * Parses `ss -Hltnu[p]` output. `*` is ss's way of printing a dual-stack `::` socket (not IPV6_V6ONLY): it
 * listens on IPv4 and IPv6, so it becomes two sockets.
 */
export function parseSs(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    const [netid, state] = cols;
    if (netid !== 'tcp' && netid !== 'udp') continue;
    if (netid === 'tcp' && state !== 'LISTEN') continue;
    if (netid === 'udp' && state !== 'UNCONN') continue;
    const ep = splitEndpoint(cols[4] ?? '');
    if (!ep) continue;
    const proc = /users:\(\("([^"]*)"/.exec(line)?.[1];
    const base = { proto: netid, port: ep.port, ...(proc !== undefined ? { process: proc } : {}) } as const;
    if (ep.address === '*') {
      out.push({ ...base, address: '0.0.0.0' }, { ...base, address: '::' });
    } else {
      out.push({ ...base, address: ep.address });
    }
  }
  return out;
}

function hexV4(hex: string): string {
  // /proc prints the 32-bit address in host byte order (little-endian here).
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

function hexV6(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = Number.parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    bytes.push(word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24);
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // Shorten the longest run of zero groups, as inet_ntop does.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Parses /proc/net/{tcp,udp}{,6}: tcp sockets in LISTEN (0A), udp sockets unconnected (07). */
export function parseProcNet(text: string, proto: 'tcp' | 'udp', family: 'ipv4' | 'ipv6'): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  const want = proto === 'tcp' ? '0A' : '07';
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    const remote = cols[2];
    if (!local || !remote || cols[3] !== want) continue;
    const [addr, portHex] = local.split(':');
    if (addr === undefined || portHex === undefined) continue;
    if (proto === 'udp' && !/^0+:0000$/.test(remote)) continue;
    out.push({ proto, address: family === 'ipv4' ? hexV4(addr) : hexV6(addr), port: Number.parseInt(portHex, 16) });
  }
  return out;
}

/** The sockets listening for connections (tcp) or datagrams (udp): `ss -Hltnup`, else /proc/net. */
export async function readListeningSockets(opts: LiveOptions = {}): Promise<ListeningSocket[]> {
  const ex = executorFor(opts);
  // -p names the process; it needs privileges, so a failure retries without it.
  for (const argv of [
    ['ss', '-Hltnup'],
    ['ss', '-Hltnu'],
  ]) {
    const r = await tryRun(ex, argv, opts);
    if (r.kind === 'ok') return parseSs(r.result.stdout);
    if (r.kind === 'missing') break;
  }
  const out: ListeningSocket[] = [];
  for (const [name, proto, family] of [
    ['tcp', 'tcp', 'ipv4'],
    ['tcp6', 'tcp', 'ipv6'],
    ['udp', 'udp', 'ipv4'],
    ['udp6', 'udp', 'ipv6'],
  ] as const) {
    const path = `/proc/net/${name}`;
    let text: string | undefined;
    if (opts.netns === undefined) {
      // /proc/net follows the reading process's namespace: our own here.
      text = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    } else {
      const r = await tryRun(ex, ['cat', path], opts);
      text = r.kind === 'ok' ? r.result.stdout : undefined;
    }
    if (text !== undefined) out.push(...parseProcNet(text, proto, family));
  }
  return out;
}
