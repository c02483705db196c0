/**
 * A two-namespace lab for driving real packets through a real netfilter:
 *
 *   <name>-peer  p0 ──veth── eth0  <name>-fw
 *                p1 ──veth── eth1
 *
 * `fw` is the firewall host under test; `peer` sends probes and sees the replies. Every address in the AnyIP
 * ranges below is local to fw, so a probe to any of them is delivered (input hook) unless the ruleset stops it.
 *
 * Safety: nothing is ever created or changed in the caller's own network namespace. The only commands run there
 * are `ip netns add/del/list` and `ip -n <peer> link add ... peer ... netns <fw>`, which creates both ends of each
 * veth pair directly inside the lab namespaces. Everything else runs via `ip netns exec`. Teardown is idempotent
 * and also runs from a process 'exit' handler, and a sweep removes labs left behind by a crashed earlier run.
 */
import { type Executor, netnsExecutor, runCommand, runCommandSync } from './executor.js';

export const LAB_PREFIX = 'rampart-kt';

/** Destinations delivered locally in fw (AnyIP). Probe destinations are drawn from these. */
export const LOCAL_V4 = ['192.0.2.0/24', '198.51.100.0/24', '10.99.0.0/16'] as const;
export const LOCAL_V6 = ['2001:db8:ff::/48'] as const;

/** Link addresses (TEST-NET-3 and a documentation /64 per link): never used as probe addresses. */
const LINKS = [
  { fw: 'eth0', peer: 'p0', v4: ['203.0.113.1', '203.0.113.2'], v6: ['2001:db8:fe:0::1', '2001:db8:fe:0::2'] },
  { fw: 'eth1', peer: 'p1', v4: ['203.0.113.5', '203.0.113.6'], v6: ['2001:db8:fe:1::1', '2001:db8:fe:1::2'] },
] as const;

export interface LabLink {
  /** Interface name inside fw (what rulesets match with iifname). */
  readonly fwIf: string;
  /** Its peer end inside the peer namespace (where probes are sent from). */
  readonly peerIf: string;
  readonly fwMac: string;
  readonly peerMac: string;
}

export interface Lab {
  readonly peerNs: string;
  readonly fwNs: string;
  readonly peer: Executor;
  readonly fw: Executor;
  readonly links: readonly LabLink[];
  /** Deletes both namespaces. Idempotent; safe to call after a partial setup. */
  teardown(): Promise<void>;
  teardownSync(): void;
}

export interface LabOptions {
  /** Distinguishes several labs in one process. Names are `rampart-kt-<pid>[-tag]-{peer,fw}`. */
  readonly tag?: string;
  readonly timeoutMs?: number;
}

const NAME_RE = /^rampart-kt-(\d+)(?:-[\w.]+)?-(?:peer|fw)$/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function listNamespaces(): Promise<string[]> {
  const r = await runCommand(['ip', '-j', 'netns', 'list'], { timeoutMs: 10_000 });
  const text = r.stdout.trim();
  if (text === '') return [];
  return (JSON.parse(text) as { name: string }[]).map((n) => n.name);
}

/**
 * Deletes `rampart-kt-<pid>-*` namespaces whose owning process is gone (a crashed earlier run of this suite).
 * Labs of live processes, including a concurrent run of the suite, are left alone. Returns the names deleted.
 */
export async function sweepStaleLabs(): Promise<string[]> {
  const deleted: string[] = [];
  for (const name of await listNamespaces()) {
    const m = NAME_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await runCommand(['ip', 'netns', 'del', name], { allowFailure: true, timeoutMs: 10_000 });
    deleted.push(name);
  }
  return deleted;
}

interface LinkJson {
  ifname: string;
  address?: string;
}

async function macs(ex: Executor): Promise<Map<string, string>> {
  const r = await ex.run(['ip', '-j', 'link', 'show']);
  const links = JSON.parse(r.stdout) as LinkJson[];
  return new Map(links.map((l) => [l.ifname, l.address ?? '']));
}

function sysctlArgs(settings: Readonly<Record<string, string | number>>): string[] {
  return ['sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)];
}

/** Creates the lab. On any failure the partial lab is deleted before the error propagates. */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  if (opts.tag !== undefined && !/^[\w.]+$/.test(opts.tag)) throw new Error(`invalid lab tag '${opts.tag}'`);
  const base = `${LAB_PREFIX}-${process.pid}${opts.tag ? `-${opts.tag}` : ''}`;
  const peerNs = `${base}-peer`;
  const fwNs = `${base}-fw`;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let torn = false;

  const teardownSync = (): void => {
    if (torn) return;
    torn = true;
    process.removeListener('exit', teardownSync);
    for (const ns of [peerNs, fwNs]) runCommandSync(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs });
  };
  const teardown = async (): Promise<void> => {
    if (torn) return;
    torn = true;
    process.removeListener('exit', teardownSync);
    for (const ns of [peerNs, fwNs]) {
      await runCommand(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs });
    }
  };
  // Registered before the first namespace exists, so even a crash halfway through setup cleans up.
  process.on('exit', teardownSync);

  try {
    const existing = await listNamespaces();
    for (const ns of [peerNs, fwNs]) {
      if (existing.includes(ns)) await runCommand(['ip', 'netns', 'del', ns], { timeoutMs });
    }
    await runCommand(['ip', 'netns', 'add', peerNs], { timeoutMs });
    await runCommand(['ip', 'netns', 'add', fwNs], { timeoutMs });
    for (const l of LINKS) {
      // Both ends are born inside the lab: one in peer, the other moved at creation into fw.
      await runCommand(
        ['ip', '-n', peerNs, 'link', 'add', l.peer, 'type', 'veth', 'peer', 'name', l.fw, 'netns', fwNs],
        {
          timeoutMs,
        },
      );
    }
    const peer = netnsExecutor(peerNs);
    const fw = netnsExecutor(fwNs);

    // Sysctls before addresses, so DAD never delays an address and rp_filter never hides a probe.
    const common: Record<string, number> = {
      'net.ipv6.conf.all.accept_dad': 0,
      'net.ipv6.conf.default.accept_dad': 0,
      'net.ipv6.conf.all.forwarding': 0,
      'net.ipv6.conf.all.accept_ra': 0,
      'net.ipv6.conf.default.accept_ra': 0,
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
    };
    const fwSysctl: Record<string, number> = {
      ...common,
      'net.ipv4.ip_forward': 0,
      'net.ipv4.conf.all.accept_local': 1,
      // Rejects are observed by their replies: the kernel must not rate-limit them.
      'net.ipv4.icmp_ratelimit': 0,
      'net.ipv4.icmp_msgs_per_sec': 1_000_000,
      'net.ipv4.icmp_msgs_burst': 1_000_000,
      'net.ipv6.icmp.ratelimit': 0,
    };
    for (const l of LINKS) {
      fwSysctl[`net.ipv4.conf.${l.fw}.rp_filter`] = 0;
      // A fixture may use a probe source that is also local here; the kernel must not drop it as a martian.
      fwSysctl[`net.ipv4.conf.${l.fw}.accept_local`] = 1;
      fwSysctl[`net.ipv6.conf.${l.fw}.accept_dad`] = 0;
    }
    await fw.run(sysctlArgs(fwSysctl), { timeoutMs });
    await peer.run(
      sysctlArgs({ ...common, ...Object.fromEntries(LINKS.map((l) => [`net.ipv6.conf.${l.peer}.accept_dad`, 0])) }),
      { timeoutMs },
    );

    const peerMacs = await macs(peer);
    const fwMacs = await macs(fw);
    const links: LabLink[] = LINKS.map((l) => ({
      fwIf: l.fw,
      peerIf: l.peer,
      fwMac: fwMacs.get(l.fw) ?? '',
      peerMac: peerMacs.get(l.peer) ?? '',
    }));

    const peerBatch = ['link set lo up'];
    const fwBatch = ['link set lo up'];
    LINKS.forEach((l, i) => {
      const link = links[i]!;
      peerBatch.push(
        `link set ${l.peer} up`,
        `addr add ${l.v4[1]}/30 dev ${l.peer}`,
        `addr add ${l.v6[1]}/64 dev ${l.peer} nodad`,
        `neigh replace ${l.v4[0]} lladdr ${link.fwMac} dev ${l.peer} nud permanent`,
        `neigh replace ${l.v6[0]} lladdr ${link.fwMac} dev ${l.peer} nud permanent`,
      );
      fwBatch.push(
        `link set ${l.fw} up`,
        `addr add ${l.v4[0]}/30 dev ${l.fw}`,
        `addr add ${l.v6[0]}/64 dev ${l.fw} nodad`,
        // Static neighbours: replies (rejects) leave at once, without waiting for ARP/ND.
        `neigh replace ${l.v4[1]} lladdr ${link.peerMac} dev ${l.fw} nud permanent`,
        `neigh replace ${l.v6[1]} lladdr ${link.peerMac} dev ${l.fw} nud permanent`,
        `route add default via ${l.v4[1]} dev ${l.fw} metric ${100 + i}`,
        `route add default via ${l.v6[1]} dev ${l.fw} metric ${100 + i}`,
      );
    });
    for (const cidr of LOCAL_V4) fwBatch.push(`route add local ${cidr} dev lo`);
    for (const cidr of LOCAL_V6) fwBatch.push(`route add local ${cidr} dev lo`);
    await peer.run(['ip', '-batch', '-'], { input: `${peerBatch.join('\n')}\n`, timeoutMs });
    await fw.run(['ip', '-batch', '-'], { input: `${fwBatch.join('\n')}\n`, timeoutMs });

    for (const l of links) {
      if (!l.fwMac || !l.peerMac) throw new Error(`lab ${base}: missing MAC for ${l.fwIf}/${l.peerIf}`);
    }
    return { peerNs, fwNs, peer, fw, links, teardown, teardownSync };
  } catch (e) {
    await teardown();
    throw e;
  }
}
