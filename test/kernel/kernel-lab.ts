/**
 * Drives probes through the lab's firewall namespace and reads the kernel's own verdict for each one.
 *
 * Observation never changes the ruleset under test: a separate table `inet rampart_observe` is added after it,
 * with counter-only set lookups (no verdicts, policy accept) in a prerouting chain at the lowest priority (sees
 * every probe that arrived) and an input chain at the highest (sees exactly the probes no chain dropped: an accept
 * in another table does not stop later base chains). Drop and reject are told apart by the replies the peer sees
 * (TCP RST, ICMP/ICMPv6 unreachable quoting the probe).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FinalVerdict, L3 } from '../../src/firewall/model.js';
import { formatAddress, parseAddressRange } from '../../src/firewall/values.js';
import { ExecError, type ExecOptions, type ExecResult, type Executor } from '../../src/lab/executor.js';
import type { Pools, Probe, Rng } from '../../src/lab/generate.js';
import { type Lab, LOCAL_V4, LOCAL_V6 } from '../../src/lab/netns.js';

export const SENDER = fileURLToPath(new URL('./send-packets.py', import.meta.url));
export const RUNNER = fileURLToPath(new URL('./ns-runner.py', import.meta.url));

/** `file`, when given, is the ruleset's own path: loaded from there so relative `include`s resolve. */
export type RulesetSource =
  | { readonly kind: 'nft-text'; readonly text: string; readonly file?: string }
  | { readonly kind: 'nft-json'; readonly text: string; readonly file?: string }
  | { readonly kind: 'iptables'; readonly v4?: string; readonly v6?: string; readonly ipsets?: string };

export interface KernelObservation {
  readonly probe: Probe;
  /** Times seen at the first prerouting hook: 1 unless the probe was lost before netfilter. */
  readonly arrived: number;
  /** Times seen at the last input hook. */
  readonly delivered: number;
  readonly replies: readonly string[];
  /** undefined when the probe never arrived (a lab fault, not a firewall verdict). */
  readonly verdict: FinalVerdict | undefined;
}

/** Empties fw's ruleset. Only ever run inside the lab's fw namespace. */
export async function flushFirewall(lab: Lab): Promise<void> {
  await lab.fw.run(['nft', 'flush', 'ruleset']);
}

let scratch: string | undefined;
/** nft cannot read /dev/stdin when it is a socket (as node makes it), so rulesets go through a scratch file. */
function scratchFile(name: string, text: string): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'rampart-kt-'));
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}
process.on('exit', () => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Namespaces where ipsets may have been made (the others have none to destroy before a load). */
const ipsetsIn = new Set<string>();

export async function loadFirewall(lab: Lab, src: RulesetSource): Promise<void> {
  await flushFirewall(lab);
  // ipsets are per namespace too; referencing rules are gone after the flush, so the sets can go.
  if (ipsetsIn.delete(lab.fwNs)) await lab.fw.run(['ipset', 'destroy'], { allowFailure: true }).catch(() => {});
  if (src.kind === 'nft-text' || src.kind === 'nft-json') {
    // One scratch name per lab: the suite drives several labs at once.
    const file =
      src.file ?? scratchFile(`${lab.fwNs}.${src.kind === 'nft-json' ? 'ruleset.json' : 'ruleset.nft'}`, src.text);
    // -I: relative `include`s resolve next to the file, as they do for nft -f on a host's /etc/nftables.conf.
    const argv = src.kind === 'nft-json' ? ['nft', '-j', '-f', file] : ['nft', '-I', dirname(file), '-f', file];
    await lab.fw.run(argv, { cwd: dirname(file) });
  } else {
    if (src.ipsets !== undefined) {
      ipsetsIn.add(lab.fwNs);
      await lab.fw.run(['ipset', 'restore', '-exist'], { input: src.ipsets });
    }
    if (src.v4 !== undefined) await lab.fw.run(['iptables-restore'], { input: src.v4 });
    if (src.v6 !== undefined) await lab.fw.run(['ip6tables-restore'], { input: src.v6 });
  }
}

function elements(probes: readonly Probe[], family: 'ipv4' | 'ipv6'): string {
  return probes
    .filter((p) => p.family === family)
    .map((p) => `${p.saddr} . ${p.daddr} . ${p.key}`)
    .join(', ');
}

/** The observer table: per-probe counters as set elements, keyed by addresses and the probe key (IP id/flowlabel). */
export function observerTable(probes: readonly Probe[]): string {
  const v4 = elements(probes, 'ipv4');
  const v6 = elements(probes, 'ipv6');
  const set = (name: string, type: string, elems: string): string =>
    `  set ${name} { typeof ${type}; counter;${elems ? ` elements = { ${elems} }` : ''} }\n`;
  const k4 = 'ip saddr . ip daddr . ip id';
  const k6 = 'ip6 saddr . ip6 daddr . ip6 flowlabel';
  return (
    'table inet rampart_observe {\n' +
    set('pre4', k4, v4) +
    set('pre6', k6, v6) +
    set('in4', k4, v4) +
    set('in6', k6, v6) +
    '  chain pre {\n    type filter hook prerouting priority -2147483648; policy accept;\n' +
    `    ${k4} @pre4\n    ${k6} @pre6\n  }\n` +
    '  chain in {\n    type filter hook input priority 2147483647; policy accept;\n' +
    `    ${k4} @in4\n    ${k6} @in6\n  }\n` +
    '}\n'
  );
}

interface SetJson {
  set?: {
    name: string;
    table: string;
    elem?: { elem: { val: { concat: unknown[] }; counter?: { packets: number } } }[];
  };
}

function readCounters(json: string): Map<string, number> {
  const out = new Map<string, number>();
  const doc = JSON.parse(json) as { nftables: SetJson[] };
  for (const item of doc.nftables) {
    const set = item.set;
    if (set?.table !== 'rampart_observe') continue;
    for (const e of set.elem ?? []) {
      const key = e.elem.val.concat[2];
      out.set(`${set.name}/${String(key)}`, e.elem.counter?.packets ?? 0);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The command runner: one long-lived python3 per namespace (`ns-runner.py`), which runs the suite's nft, ip and
// iptables commands there. Each command started from the test process instead forks the large vitest worker and
// enters the namespace through `ip netns exec`: most of the suite's CPU went there (perf: the worker's fork and page
// copying, `ip`), not into the commands themselves.

interface Pending {
  readonly argv: readonly string[];
  readonly opts: ExecOptions;
  resolve(r: ExecResult): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

function quoteArgv(argv: readonly string[]): string {
  const text = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** An Executor for one namespace whose commands go through a long-lived runner; answers as runCommand does. */
export interface RunnerExecutor extends Executor {
  /** Commands run so far and their CPU (user + sys) in ms, by program and first argument (for the suite's summary). */
  readonly commands: ReadonlyMap<string, { n: number; cpuMs: number }>;
  /**
   * Ends the runner; the next command starts a fresh one. `ip netns exec` mounts /etc/netns/<ns>/* over /etc when it
   * starts a process, so a runner sees only the files that existed then: reset after changing them.
   */
  reset(): Promise<void>;
}

export function runnerExecutor(namespace: string): RunnerExecutor {
  if (!/^[\w.-]+$/.test(namespace)) throw new Error(`invalid namespace name '${namespace}'`);
  let child: ChildProcessWithoutNullStreams | undefined;
  let out = '';
  let err = '';
  const commands = new Map<string, { n: number; cpuMs: number }>();
  const waiting: Pending[] = [];

  const fail = (c: ChildProcessWithoutNullStreams, e: Error): void => {
    if (child !== c) return;
    child = undefined;
    runners.delete(c);
    for (const w of waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  };
  const start = (): ChildProcessWithoutNullStreams => {
    // `ip netns exec` execs python in place: the child's PID is the runner's.
    const c = spawn('ip', ['netns', 'exec', namespace, 'python3', RUNNER], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    out = '';
    err = '';
    runners.add(c);
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d: string) => {
      if (child !== c) return;
      out += d;
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const w = waiting.shift();
        if (!w) continue;
        clearTimeout(w.timer);
        const a = JSON.parse(line) as {
          error?: string;
          code: number;
          stdout: string;
          stderr: string;
          timed_out: boolean;
          cpu_ms?: number;
        };
        const kind = w.argv
          .slice(0, 4)
          .map((x) => (x.includes('/') ? 'FILE' : x))
          .join(' ');
        const k = commands.get(kind) ?? { n: 0, cpuMs: 0 };
        commands.set(kind, { n: k.n + 1, cpuMs: k.cpuMs + (a.cpu_ms ?? 0) });
        if (a.error !== undefined) {
          w.reject(new Error(`cannot run ${quoteArgv(w.argv)} in netns ${namespace}: ${a.error}`));
          continue;
        }
        const result: ExecResult = { argv: w.argv, code: a.code, stdout: a.stdout, stderr: a.stderr };
        const timeoutMs = w.opts.timeoutMs ?? 30_000;
        if (a.timed_out) w.reject(new ExecError(`timed out after ${timeoutMs} ms: ${quoteArgv(w.argv)}`, result));
        else if (a.code !== 0 && !w.opts.allowFailure) {
          w.reject(new ExecError(`exit ${a.code}: ${quoteArgv(w.argv)}: ${a.stderr.trim().slice(0, 2000)}`, result));
        } else w.resolve(result);
      }
    });
    c.stderr.setEncoding('utf8');
    c.stderr.on('data', (d: string) => {
      err = (err + d).slice(-4000);
    });
    c.stdin.on('error', () => {});
    c.on('error', (e) => fail(c, new Error(`cannot start the command runner in ${namespace}: ${e.message}`)));
    c.on('close', (code, signal) =>
      fail(c, new Error(`the command runner in ${namespace} exited (${signal ?? code}): ${err.trim().slice(-2000)}`)),
    );
    return c;
  };
  const stop = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    child = undefined;
    runners.delete(c);
    for (const w of waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`the command runner in ${namespace} was stopped`));
    }
    if (c.exitCode !== null || c.signalCode !== null) return;
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.stdin.end();
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await closed;
    clearTimeout(timer);
  };
  return {
    where: `netns ${namespace} (runner)`,
    get commands() {
      return commands;
    },
    reset: stop,
    run(argv, opts = {}) {
      if (argv.length === 0) return Promise.reject(new Error('run: empty argv'));
      if (opts.env) return Promise.reject(new Error('runnerExecutor: a per-command environment is not supported'));
      const c = child ?? start();
      const timeoutMs = opts.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        // The runner kills an overrunning command itself; this is for a runner that stopped answering.
        const timer = setTimeout(() => {
          c.kill('SIGKILL');
          fail(c, new Error(`the command runner in ${namespace} gave no answer within ${timeoutMs + 10_000} ms`));
        }, timeoutMs + 10_000);
        waiting.push({ argv, opts, resolve, reject, timer });
        c.stdin.write(
          `${JSON.stringify({ argv, input: opts.input ?? '', cwd: opts.cwd ?? '', timeout_ms: timeoutMs })}\n`,
        );
      });
    },
  };
}
const runners = new Set<ChildProcessWithoutNullStreams>();
process.on('exit', () => {
  for (const c of runners) c.kill('SIGKILL');
});

/** Restarts the lab's fw runner, if it has one, so its next command sees /etc/netns/<fw>/ as it is now. */
export async function resetRunner(lab: Lab): Promise<void> {
  if ('reset' in lab.fw) await (lab.fw as RunnerExecutor).reset();
}

/** The lab with its fw commands going through a runner (stop it with `lab.fw.reset()` before the lab's teardown). */
export function withRunner(lab: Lab): Lab & { readonly fw: RunnerExecutor } {
  return { ...lab, fw: runnerExecutor(lab.fwNs) };
}

// ---------------------------------------------------------------------------------------------------------------
// The probe sender: one long-lived python3 per lab (`send-packets.py --serve` in the peer namespace), one request per
// line. Starting python costs more CPU than a request (much more behind a pyenv shim); a suite sends ~200 requests.

interface Waiter {
  resolve(line: string): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}
interface Sender {
  readonly child: ChildProcessWithoutNullStreams;
  readonly waiting: Waiter[];
  out: string;
  err: string;
}
const senders = new Map<string, Sender>();

function startSender(lab: Lab): Sender {
  // `ip netns exec` execs python in place: the child's PID is the sender's, killed by it on a timeout.
  const child = spawn('ip', ['netns', 'exec', lab.peerNs, 'python3', SENDER, '--serve'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const s: Sender = { child, waiting: [], out: '', err: '' };
  const fail = (e: Error): void => {
    if (senders.get(lab.peerNs) === s) senders.delete(lab.peerNs);
    for (const w of s.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    s.out += d;
    for (let nl = s.out.indexOf('\n'); nl >= 0; nl = s.out.indexOf('\n')) {
      const line = s.out.slice(0, nl);
      s.out = s.out.slice(nl + 1);
      const w = s.waiting.shift();
      if (w) {
        clearTimeout(w.timer);
        w.resolve(line);
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    s.err = (s.err + d).slice(-4000);
  });
  child.stdin.on('error', () => {});
  child.on('error', (e) => fail(new Error(`cannot run the probe sender in ${lab.peerNs}: ${e.message}`)));
  child.on('close', (code, signal) =>
    fail(new Error(`the probe sender in ${lab.peerNs} exited (${signal ?? code}): ${s.err.trim().slice(-2000)}`)),
  );
  senders.set(lab.peerNs, s);
  return s;
}

function sendRequest(lab: Lab, request: unknown, timeoutMs: number): Promise<string> {
  const s = senders.get(lab.peerNs) ?? startSender(lab);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // A wedged sender is replaced: the next request starts a fresh one.
      if (senders.get(lab.peerNs) === s) senders.delete(lab.peerNs);
      s.child.kill('SIGKILL');
      reject(new Error(`the probe sender in ${lab.peerNs} gave no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.waiting.push({ resolve, reject, timer });
    s.child.stdin.write(`${JSON.stringify(request)}\n`);
  });
}

/** Ends the lab's sender (closing its stdin; killed by its PID if it does not exit). Call before the lab's teardown. */
export async function stopSender(lab: Lab): Promise<void> {
  const s = senders.get(lab.peerNs);
  if (!s) return;
  senders.delete(lab.peerNs);
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const closed = new Promise<void>((resolve) => s.child.once('close', () => resolve()));
  s.child.stdin.end();
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await closed;
  clearTimeout(timer);
}
process.on('exit', () => {
  for (const s of senders.values()) s.child.kill('SIGKILL');
});

export interface SendOptions {
  /** Microseconds between probes (averaged). */
  readonly gapUs?: number;
  /** How long to wait for replies after the last probe. */
  readonly waitMs?: number;
}

/**
 * Sends the probes through fw (whose ruleset is already loaded) and returns the kernel's verdict for each.
 * Probe keys must be unique within the call (and < 65536 for IPv4).
 */
export async function observe(
  lab: Lab,
  probes: readonly Probe[],
  opts: SendOptions = {},
): Promise<KernelObservation[]> {
  await lab.fw.run(['nft', '-f', scratchFile(`${lab.fwNs}.observer.nft`, observerTable(probes))]);
  const links: Record<string, { dev: string; src_mac: string; dst_mac: string }> = {};
  for (const l of lab.links) links[l.fwIf] = { dev: l.peerIf, src_mac: l.peerMac, dst_mac: l.fwMac };
  const request = {
    links,
    probes: probes.map((p) => ({ ...p, dport: p.dport ?? p.sport })),
    gap_us: opts.gapUs ?? 30,
    wait_ms: opts.waitMs ?? 250,
  };
  const { replies } = JSON.parse(await sendRequest(lab, request, 60_000)) as { replies: Record<string, string[]> };
  const listed = await lab.fw.run(['nft', '-j', 'list', 'table', 'inet', 'rampart_observe']);
  const counters = readCounters(listed.stdout);
  await lab.fw.run(['nft', 'delete', 'table', 'inet', 'rampart_observe']);
  return probes.map((probe) => {
    const v = probe.family === 'ipv4' ? '4' : '6';
    const arrived = counters.get(`pre${v}/${probe.key}`) ?? 0;
    const delivered = counters.get(`in${v}/${probe.key}`) ?? 0;
    const rs = replies[String(probe.key)] ?? [];
    let verdict: FinalVerdict | undefined;
    if (arrived === 0) verdict = undefined;
    else if (delivered > 0) verdict = 'accept';
    else if (rs.some((r) => r === 'rst' || r.startsWith('unreach:'))) verdict = 'reject';
    else verdict = 'drop';
    return { probe, arrived, delivered, replies: rs, verdict };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Probe pools for fixtures: the addresses and ports a ruleset file mentions, so its rules get hit.

const ADDR_TOKEN =
  /(?<![\w:.])((?:\d{1,3}\.){3}\d{1,3}(?:\/\d{1,2})?|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\/\d{1,3})?)(?![\w:.])/gi;
const PORT_CONTEXT = /(?:dports?|sports?)\s*(?:!=\s*)?(\{[^}]*\}|[\d:,-]+)/g;

function usable(family: L3, v: bigint): boolean {
  const inV4 = (cidr: string): boolean => {
    const r = parseAddressRange(cidr)!;
    return v >= r.lo && v <= r.hi;
  };
  if (family === 'ipv4') {
    return !['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3', '203.0.113.0/29'].some(inV4);
  }
  return !['::/8', 'fe80::/10', 'ff00::/8', '2001:db8:fe::/48'].some(inV4);
}

export interface FixturePools extends Pools {
  /** Destinations outside the lab's AnyIP ranges: need a local route in fw while this fixture runs. */
  readonly extraLocal: readonly string[];
}

/** Addresses (a host inside each CIDR) and ports mentioned in a ruleset text, split into sources and destinations. */
export function poolsFromText(text: string, r: Rng, fallback: Pools): FixturePools {
  const hosts = { ipv4: new Set<string>(), ipv6: new Set<string>() };
  for (const m of text.matchAll(ADDR_TOKEN)) {
    const range = parseAddressRange(m[1]!);
    if (!range) continue;
    const span = range.hi - range.lo;
    // The first host, one in the middle: both inside the prefix, so prefix rules match them.
    for (const v of span === 0n ? [range.lo] : [range.lo + 1n, range.lo + span / 2n]) {
      if (usable(range.family, v)) hosts[range.family].add(formatAddress(range.family, v));
    }
  }
  const ports = new Set<number>(fallback.ports);
  for (const m of text.matchAll(PORT_CONTEXT)) {
    for (const n of m[1]!.match(/\d+/g) ?? []) if (Number(n) >= 1 && Number(n) <= 65535) ports.add(Number(n));
  }
  const local = (family: L3, a: string): boolean => {
    const v = parseAddressRange(a)!.lo;
    return (family === 'ipv4' ? LOCAL_V4 : LOCAL_V6).some((c) => {
      const range = parseAddressRange(c)!;
      return v >= range.lo && v <= range.hi;
    });
  };
  const src4 = [...fallback.src4.slice(0, 2)];
  const dst4 = [...fallback.dst4.slice(0, 2)];
  const src6 = [...fallback.src6.slice(0, 2)];
  const dst6 = [...fallback.dst6.slice(0, 2)];
  const extraLocal: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    for (const a of hosts[family]) {
      const isLocal = local(family, a);
      // Sources must not be local in fw (a reject's reply would stay in fw); other addresses go either way.
      const asDst = isLocal || r.chance(0.5);
      if (asDst) {
        (family === 'ipv4' ? dst4 : dst6).push(a);
        if (!isLocal) extraLocal.push(a);
      } else {
        (family === 'ipv4' ? src4 : src6).push(a);
      }
    }
  }
  return { src4, dst4, src6, dst6, ports: [...ports], extraLocal };
}

/** Adds (or removes) host routes that make extra addresses local in fw, for a fixture's destinations. */
export async function setExtraLocal(lab: Lab, addrs: readonly string[], on: boolean): Promise<void> {
  if (addrs.length === 0) return;
  const lines = addrs.map((a) => `route ${on ? 'replace' : 'del'} local ${a} dev lo`);
  await lab.fw.run(['ip', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, allowFailure: !on });
}
