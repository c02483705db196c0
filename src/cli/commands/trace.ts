import type { Command } from 'commander';
import { didYouMean } from '../../config/did-you-mean.js';
import { UserError } from '../../errors.js';
import type { AddrType, CtState, L3, Packet } from '../../firewall/model.js';
import { CT_STATES, L4_PROTOCOLS, PORT_PROTOCOLS } from '../../firewall/model.js';
import { own } from '../../firewall/parsers/common.js';
import { renderTrace } from '../../firewall/render-trace.js';
import {
  ADDR_TYPES,
  portNumber,
  serviceNames,
  TRACE_ICMP_TYPES,
  TRACE_ICMPV6_TYPES,
  TRACE_TCP_FLAGS,
} from '../../firewall/symbols.js';
import { TRACE_HOOKS, type TraceHook, trace } from '../../firewall/tracer.js';
import { parseAddress } from '../../firewall/values.js';
import { printJson, run } from '../output.js';
import { addRulesetOptions, loadFromCli, type RulesetCliOptions } from './parse.js';

/** The packet flags as commander hands them over (all strings). */
export interface PacketCliOptions {
  hook?: string;
  only?: boolean;
  iif?: string;
  oif?: string;
  src?: string;
  dst?: string;
  proto?: string;
  sport?: string;
  dport?: string;
  ctState?: string;
  icmpType?: string;
  icmpCode?: string;
  mark?: string;
  tcpFlags?: string;
  saddrType?: string;
  daddrType?: string;
}

function bad(message: string, details: Record<string, unknown> = {}): UserError {
  return new UserError('RAMPART_ERR_PACKET', message, details);
}

function intIn(flag: string, text: string, max: number, what: string): number {
  const t = text.trim();
  const n = /^\d+$/.test(t) ? Number(t) : /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw bad(`${flag} '${text}': expected ${what} (0-${max})`, { flag, value: text });
  }
  return n;
}

function ifname(flag: string, text: string): string {
  // IFNAMSIZ is 16 including the terminating NUL; names have no whitespace or slash.
  if (!/^[^\s/]{1,15}$/.test(text)) {
    throw bad(`${flag} '${text}': not an interface name (1-15 characters, no spaces or '/')`, { flag, value: text });
  }
  return text;
}

function addrType(flag: string, text: string): AddrType {
  const t = text.toLowerCase();
  if (!(ADDR_TYPES as readonly string[]).includes(t)) {
    throw bad(`${flag} '${text}': unknown address type; expected one of ${ADDR_TYPES.join(', ')}`, { flag });
  }
  return t as AddrType;
}

function protoName(n: number): string {
  return Object.entries(L4_PROTOCOLS).find(([, v]) => v === n)?.[0] ?? String(n);
}

/** Validates the packet flags and builds the packet; every problem is a RAMPART_ERR_PACKET naming the flag. */
export function packetFromOptions(o: PacketCliOptions, rulesetFamily?: string): { packet: Packet; hook: TraceHook } {
  const hookText = o.hook ?? 'input';
  if (!(TRACE_HOOKS as readonly string[]).includes(hookText)) {
    throw bad(`--hook '${hookText}': unknown hook; expected one of ${TRACE_HOOKS.join(', ')}`, { flag: '--hook' });
  }
  const hook = hookText as TraceHook;
  if (o.src === undefined) throw bad('--src is required: the packet source address', { flag: '--src' });
  if (o.dst === undefined) throw bad('--dst is required: the packet destination address', { flag: '--dst' });
  const src = parseAddress(o.src.trim());
  if (!src) throw bad(`--src '${o.src}': not an IPv4 or IPv6 address`, { flag: '--src', value: o.src });
  const dst = parseAddress(o.dst.trim());
  if (!dst) throw bad(`--dst '${o.dst}': not an IPv4 or IPv6 address`, { flag: '--dst', value: o.dst });
  const v = (f: L3) => (f === 'ipv4' ? 'IPv4' : 'IPv6');
  if (src.family !== dst.family) {
    throw bad(
      `--src ${o.src} is ${v(src.family)} but --dst ${o.dst} is ${v(dst.family)}; give addresses of one family`,
    );
  }
  const family = src.family;
  if (rulesetFamily !== undefined) {
    if (rulesetFamily !== 'ipv4' && rulesetFamily !== 'ipv6') {
      throw new UserError('RAMPART_ERR_USAGE', `--family '${rulesetFamily}': expected ipv4 or ipv6`);
    }
    if (rulesetFamily !== family) {
      throw bad(`--family ${rulesetFamily} but the packet addresses are ${v(family)}`, { flag: '--family' });
    }
  }

  const icmpProto = family === 'ipv4' ? 1 : 58;
  let l4proto: number;
  if (o.proto === undefined) {
    l4proto = o.icmpType !== undefined || o.icmpCode !== undefined ? icmpProto : 6;
  } else {
    const p = o.proto.trim().toLowerCase();
    const named = own(L4_PROTOCOLS, p);
    if (named !== undefined) l4proto = named;
    else if (/^\d+$/.test(p) && Number(p) <= 255) l4proto = Number(p);
    else {
      throw bad(
        `--proto '${o.proto}': unknown protocol; expected a number 0-255 or one of ${Object.keys(L4_PROTOCOLS).join(', ')}`,
        { flag: '--proto' },
      );
    }
  }
  if (family === 'ipv6' && l4proto === 1) throw bad('--proto icmp with IPv6 addresses: use --proto icmpv6');
  if (family === 'ipv4' && l4proto === 58) throw bad('--proto icmpv6 with IPv4 addresses: use --proto icmp');
  const pname = protoName(l4proto);

  const port = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n =
      portNumber(text) ??
      intIn(
        flag,
        text,
        65535,
        `a port number or a service name (http, https, ssh, domain, ...)${didYouMean(text, serviceNames())}`,
      );
    if (!PORT_PROTOCOLS.has(l4proto)) {
      throw bad(`${flag} ${text}: protocol ${pname} has no ports (ports exist for tcp, udp, sctp, dccp, udplite)`, {
        flag,
      });
    }
    return n;
  };
  const sport = port('--sport', o.sport);
  const dport = port('--dport', o.dport);

  let icmpType: number | undefined;
  let icmpCode: number | undefined;
  if (o.icmpType !== undefined || o.icmpCode !== undefined) {
    if (l4proto !== icmpProto) {
      const flag = o.icmpType !== undefined ? '--icmp-type' : '--icmp-code';
      throw bad(`${flag}: only for ICMP packets, but the protocol is ${pname}`, { flag });
    }
  }
  if (o.icmpType !== undefined) {
    const names = family === 'ipv4' ? TRACE_ICMP_TYPES : TRACE_ICMPV6_TYPES;
    const t = o.icmpType.trim().toLowerCase();
    const named = names[t];
    if (named !== undefined) icmpType = named;
    else if (/^\d+$/.test(t) && Number(t) <= 255) icmpType = Number(t);
    else {
      throw bad(
        `--icmp-type '${o.icmpType}': unknown ${family === 'ipv4' ? 'ICMP' : 'ICMPv6'} type; expected 0-255 or one of ${Object.keys(names).join(', ')}`,
        { flag: '--icmp-type' },
      );
    }
  }
  if (o.icmpCode !== undefined) icmpCode = intIn('--icmp-code', o.icmpCode, 255, 'an ICMP code');

  let ctState: CtState | undefined;
  if (o.ctState !== undefined) {
    const c = o.ctState.trim().toLowerCase();
    if (!(CT_STATES as readonly string[]).includes(c)) {
      throw bad(`--ct-state '${o.ctState}': unknown conntrack state; expected one of ${CT_STATES.join(', ')}`, {
        flag: '--ct-state',
      });
    }
    ctState = c as CtState;
  }

  const mark = o.mark === undefined ? undefined : intIn('--mark', o.mark, 0xffffffff, 'a 32-bit mark');

  let tcpFlags: number | undefined;
  if (o.tcpFlags !== undefined) {
    if (l4proto !== 6) throw bad(`--tcp-flags: only for tcp packets, but the protocol is ${pname}`);
    const t = o.tcpFlags.trim().toLowerCase();
    if (/^(\d+|0x[0-9a-f]+)$/.test(t)) tcpFlags = intIn('--tcp-flags', t, 255, 'a flags byte');
    else {
      tcpFlags = 0;
      for (const name of t.split(/[,|]/)) {
        const bit = own(TRACE_TCP_FLAGS, name.trim());
        if (bit === undefined) {
          throw bad(
            `--tcp-flags '${o.tcpFlags}': unknown flag '${name}'; expected a comma-separated list of ${Object.keys(TRACE_TCP_FLAGS).join(', ')}`,
            { flag: '--tcp-flags' },
          );
        }
        tcpFlags |= bit;
      }
    }
  }

  const packet: Packet = {
    family,
    saddr: o.src.trim(),
    daddr: o.dst.trim(),
    l4proto,
    ...(o.iif !== undefined ? { iif: ifname('--iif', o.iif) } : {}),
    ...(o.oif !== undefined ? { oif: ifname('--oif', o.oif) } : {}),
    ...(sport !== undefined ? { sport } : {}),
    ...(dport !== undefined ? { dport } : {}),
    ...(icmpType !== undefined ? { icmpType } : {}),
    ...(icmpCode !== undefined ? { icmpCode } : {}),
    ...(ctState !== undefined ? { ctState } : {}),
    ...(mark !== undefined ? { mark } : {}),
    ...(tcpFlags !== undefined ? { tcpFlags } : {}),
    ...(o.saddrType !== undefined ? { saddrType: addrType('--saddr-type', o.saddrType) } : {}),
    ...(o.daddrType !== undefined ? { daddrType: addrType('--daddr-type', o.daddrType) } : {}),
  };
  return { packet, hook };
}

export function registerTrace(program: Command): void {
  addRulesetOptions(
    program
      .command('trace')
      .description('trace one packet through a ruleset: the verdict, the rule that decided it and the path taken')
      .argument('<files...>', 'ruleset files (nft JSON, nft text, iptables-save); several are merged'),
  )
    .option(
      '--hook <hook>',
      'where the packet is decided: input (to this host), forward, output, prerouting, postrouting',
      'input',
    )
    .option('--only', 'trace only the named hook (by default input also runs prerouting, forward runs all three)')
    .option('--src <address>', 'source address (IPv4 or IPv6; the family follows)')
    .option('--dst <address>', 'destination address')
    .option('--proto <protocol>', 'l4 protocol name or number (default tcp, or icmp when --icmp-type is given)')
    .option('--sport <port>', 'source port')
    .option('--dport <port>', 'destination port')
    .option('--iif <name>', 'input interface')
    .option('--oif <name>', 'output interface')
    .option('--ct-state <state>', `conntrack state: ${CT_STATES.join(', ')} (default new)`)
    .option('--icmp-type <type>', 'ICMP type name (echo-request) or number')
    .option('--icmp-code <code>', 'ICMP code')
    .option('--mark <mark>', 'packet mark, decimal or 0x hex (default 0)')
    .option('--tcp-flags <flags>', 'tcp flags, e.g. syn or syn,ack (default syn for new, ack otherwise)')
    .option('--saddr-type <type>', 'source address type (default unicast)')
    .option('--daddr-type <type>', 'destination address type (default local for input, unicast otherwise)')
    .action(async (files: string[], o: RulesetCliOptions & PacketCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), () => {
        // Validate the packet before reading files: bad flags fail fast and alone.
        const { packet, hook } = packetFromOptions(o, o.family);
        const rs = loadFromCli(files, o);
        const result = trace(rs, packet, { hook, only: Boolean(o.only) });
        if (o.json) printJson(result);
        else process.stdout.write(renderTrace(result));
      }),
    );
}
