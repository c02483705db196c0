import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../errors.js';
import { type IncludedFile, nftTextToJson, parseNftText } from './nft-text.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/nft-text');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const includeFixture = (path: string): IncludedFile[] => [{ file: path, text: fixture(path) }];
const toJson = (name: string): unknown[] => nftTextToJson(fixture(name), name, { include: includeFixture });

const IS_ROOT = process.getuid?.() === 0;
const HAS_NFT =
  IS_ROOT &&
  (() => {
    try {
      execFileSync('nft', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

/**
 * Loads a fixture into a throwaway network namespace and returns what `nft -j list ruleset` prints for it.
 * Never touches the host's own ruleset: every nft call runs inside the namespace, which is always deleted.
 */
function kernelJson(name: string): unknown[] {
  const ns = `rampart-text-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-I', FIXTURES, '-f', join(FIXTURES, name)]);
    const out = execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' });
    return (JSON.parse(out) as { nftables: unknown[] }).nftables;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

/**
 * Makes our JSON and nft's comparable. Each step undoes one thing nft does that carries no meaning here:
 * - `metainfo`, `handle` (kernel bookkeeping) and our own `$origin`/`$text`/`$...` keys are dropped;
 * - set and map elements are sorted: nft prints them in the kernel's order (by value), we keep the source order;
 * - each run of consecutive `match` entries in a rule is sorted: matches are a conjunction, and nft reorders
 *   header matches by offset (`icmpv6 type ... ip6 hoplimit 255` prints hoplimit first).
 */
function normalise(items: readonly unknown[]): unknown[] {
  const canon = (v: unknown): string => JSON.stringify(strip(v));
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v !== 'object' || v === null) return v;
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      if (k === 'handle' || k.startsWith('$')) continue;
      let x = strip((v as Record<string, unknown>)[k]);
      if ((k === 'set' || k === 'elem') && Array.isArray(x))
        x = [...x].sort((a, b) => canon(a).localeCompare(canon(b)));
      if (k === 'expr' && Array.isArray(x)) x = sortMatchRuns(x, canon);
      o[k] = x;
    }
    return o;
  };
  return items.filter((x) => !(typeof x === 'object' && x !== null && 'metainfo' in x)).map(strip);
}

function sortMatchRuns(expr: unknown[], canon: (v: unknown) => string): unknown[] {
  const out: unknown[] = [];
  let run: unknown[] = [];
  const flush = (): void => {
    out.push(...run.sort((a, b) => canon(a).localeCompare(canon(b))));
    run = [];
  };
  for (const e of expr) {
    if (typeof e === 'object' && e !== null && 'match' in e) run.push(e);
    else {
      flush();
      out.push(e);
    }
  }
  flush();
  return out;
}

/** Like kernelJson, for a ruleset given as text (fed to `nft -f -`). */
function kernelJsonOfText(text: string): unknown[] {
  const ns = `rampart-text-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: text });
    const out = execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' });
    return (JSON.parse(out) as { nftables: unknown[] }).nftables;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const rulesOf = (items: readonly unknown[]): Record<string, unknown>[] =>
  items.flatMap((x) => ('rule' in (x as object) ? [(x as { rule: Record<string, unknown> }).rule] : []));
const exprOf = (text: string, family = 'inet'): unknown[] => {
  const items = nftTextToJson(`table ${family} t {\n chain c {\n  ${text}\n }\n}\n`, 'r.nft');
  return rulesOf(items)[0]?.expr as unknown[];
};
const parseError = (text: string, opts = {}): ParseError => {
  try {
    nftTextToJson(text, 'bad.nft', opts);
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('expected a ParseError');
};

const KERNEL_FIXTURES = [
  'debian-default.nft',
  'hardened-web.nft',
  'founding-outage.nft',
  'defines-main.nft',
  'sets-maps.nft',
  'listed-hardened-web.nft',
  'listed-a-sets-maps.nft',
];

describe('nft text parser against the kernel (nft -j list ruleset in a namespace)', () => {
  for (const name of KERNEL_FIXTURES) {
    it.skipIf(!HAS_NFT)(`builds the JSON nft prints for ${name}`, () => {
      expect(normalise(toJson(name))).toEqual(normalise(kernelJson(name)));
    });
  }
  if (!HAS_NFT) it.skip('kernel comparison needs root and nft (skipped: not root or no nft)', () => {});
});

describe('nft list ruleset output', () => {
  it('parses `nft list ruleset` output of a file to the same JSON as the file', () => {
    expect(normalise(toJson('listed-hardened-web.nft'))).toEqual(normalise(toJson('hardened-web.nft')));
  });

  it('parses `nft -a list ruleset` output (with # handle comments and wrapped element lists)', () => {
    expect(normalise(toJson('listed-a-sets-maps.nft'))).toEqual(normalise(toJson('sets-maps.nft')));
  });
});

describe('nft text parser: structure', () => {
  it('parses Debian’s default nftables.conf into three accept-policy base chains', () => {
    const items = toJson('debian-default.nft');
    expect(items).toHaveLength(4);
    expect(items[1]).toMatchObject({
      chain: { family: 'inet', table: 'filter', name: 'input', type: 'filter', hook: 'input', prio: 0 },
    });
    expect((items[1] as { chain: { policy: string } }).chain.policy).toBe('accept');
  });

  it('emits tables, then sets and maps, then chains, then rules, as nft -j does', () => {
    const kinds = toJson('sets-maps.nft').map((x) => Object.keys(x as object)[0]);
    expect(kinds.slice(0, 12)).toEqual([
      'table',
      'set',
      'set',
      'set',
      'map',
      'map',
      'chain',
      'chain',
      'chain',
      'rule',
      'rule',
      'rule',
    ]);
  });

  it('attaches $origin and the rule source text, joining continued lines', () => {
    const items = toJson('defines-main.nft');
    const dnat = rulesOf(items).find((r) => r.chain === 'prerouting');
    expect(dnat?.$origin).toEqual({ line: 25, column: 28 });
    expect(dnat?.$text).toBe('iifname $WAN_IF tcp dport 8443 dnat to 10.20.1.10:443');
    const table = items[0] as { table: Record<string, unknown> };
    expect(table.table.$origin).toEqual({ line: 8, column: 1 });
  });

  it('resolves priorities given as names with offsets', () => {
    const items = nftTextToJson(
      `table ip t {
        chain a { type filter hook input priority filter + 10; }
        chain b { type filter hook prerouting priority raw; }
        chain c { type nat hook prerouting priority dstnat - 5; }
        chain d { type filter hook forward priority -200; policy drop; }
        chain e { type filter hook output priority security; }
        chain f { type route hook output priority mangle; }
        chain g { type nat hook postrouting priority srcnat; }
      }`,
      'p.nft',
    );
    const prios = items.flatMap((x) =>
      'chain' in (x as object) ? [(x as { chain: { prio: number } }).chain.prio] : [],
    );
    expect(prios).toEqual([10, -300, -105, -200, 50, -150, 100]);
  });

  it('supports command style: add/insert rule, add element, flush ruleset', () => {
    const items = nftTextToJson(
      `table ip gone { chain x { accept; }; }
flush ruleset
add table inet f
add chain inet f input { type filter hook input priority 0 ; policy drop ; }
add set inet f ok { type ipv4_addr ; }
add element inet f ok { 192.0.2.1, 192.0.2.2 }
add rule inet f input ip saddr @ok accept
insert rule inet f input ct state established accept
`,
      'cmd.nft',
    );
    expect(items.map((x) => Object.keys(x as object)[0])).toEqual(['table', 'set', 'chain', 'rule', 'rule']);
    expect(items[1]).toMatchObject({ set: { name: 'ok', elem: ['192.0.2.1', '192.0.2.2'] } });
    expect(rulesOf(items).map((r) => r.$text)).toEqual(['ct state established accept', 'ip saddr @ok accept']);
  });

  it('accepts `;` and newlines as separators, and comments anywhere', () => {
    const items = nftTextToJson(
      'table inet t { # the table\n chain c { tcp dport 22 accept; udp dport 53 accept # dns\n drop } }',
      's.nft',
    );
    expect(rulesOf(items).map((r) => r.$text)).toEqual(['tcp dport 22 accept', 'udp dport 53 accept', 'drop']);
  });
});

describe('nft text parser: defines and includes', () => {
  it('expands defines from an included file, including sets of sets', () => {
    const rules = rulesOf(toJson('defines-main.nft'));
    expect(rules[2]?.expr).toEqual([
      { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'eth*' } },
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { set: [80, 443] } } },
      { counter: { packets: 0, bytes: 0 } },
      { accept: null },
    ]);
    expect((rules[3]?.expr as unknown[] | undefined)?.[0]).toEqual({
      match: {
        op: '==',
        left: { payload: { protocol: 'ip', field: 'saddr' } },
        right: {
          set: [{ prefix: { addr: '10.20.0.0', len: 16 } }, { prefix: { addr: '192.168.10.0', len: 24 } }, '10.30.5.5'],
        },
      },
    });
  });

  it('asks the include callback with the including file and records the included file in origins', () => {
    const calls: string[][] = [];
    const items = nftTextToJson('include "rules/*.nft"\n', '/etc/nftables.conf', {
      include: (path, from) => {
        calls.push([path, from]);
        return [{ file: '/etc/rules/a.nft', text: '\ntable ip a {\n}\n' }];
      },
    });
    expect(calls).toEqual([['rules/*.nft', '/etc/nftables.conf']]);
    expect(items[0]).toEqual({
      table: { family: 'ip', name: 'a', $origin: { file: '/etc/rules/a.nft', line: 2, column: 1 } },
    });
  });

  it('rejects an undefined variable at its position', () => {
    const e = parseError('table ip t {\n chain c {\n  tcp dport $PORTS accept\n }\n}\n');
    expect([e.line, e.column, e.token]).toEqual([3, 13, '$PORTS']);
    expect(e.message).toContain("undefined variable '$PORTS'");
  });

  it('rejects a variable used before its define (defines are file-global after their definition)', () => {
    expect(parseError('table ip t { chain c { ip saddr $A accept; }; }\ndefine A = 10.0.0.1\n').token).toBe('$A');
  });

  it('rejects an include when no include resolver is given', () => {
    expect(parseError('include "x.nft"\n').expected).toContain('include');
  });

  it('stops an include loop', () => {
    const e = parseError('include "self.nft"\n', {
      include: () => [{ file: 'self.nft', text: 'include "self.nft"\n' }],
    });
    expect(e.file).toBe('self.nft');
  });
});

describe('nft text parser: expressions', () => {
  const m = (left: unknown, right: unknown, op = '=='): unknown => ({ match: { op, left, right } });
  const pl = (protocol: string, field: string): unknown => ({ payload: { protocol, field } });

  it('parses addresses, prefixes (host bits masked), ranges and negation', () => {
    expect(exprOf('ip saddr != 10.1.2.3/8 ip daddr 192.0.2.1-192.0.2.9 ip6 saddr fe80::1 drop')).toEqual([
      m(pl('ip', 'saddr'), { prefix: { addr: '10.0.0.0', len: 8 } }, '!='),
      m(pl('ip', 'daddr'), { range: ['192.0.2.1', '192.0.2.9'] }),
      m(pl('ip6', 'saddr'), 'fe80::1'),
      { drop: null },
    ]);
  });

  it('parses ct count gates as the statement nft prints', () => {
    expect(exprOf('ct count over 10 drop')).toEqual([{ 'ct count': { val: 10, inv: true } }, { drop: null }]);
    expect(exprOf('ct count 3 accept')).toEqual([{ 'ct count': { val: 3 } }, { accept: null }]);
  });

  it('rejects a misspelt verdict rather than turning it into an opaque match', () => {
    expect(() => exprOf('tcp dport 22 acept')).toThrow(/unexpected 'acept'; expected a match/);
    expect(() => exprOf('tcp dport 22 10')).toThrow(ParseError);
  });

  it('turns service names into port numbers and keeps protocol/ICMP names as nft prints them', () => {
    expect(exprOf('tcp dport { ssh, https, 8000-8080 } meta l4proto icmpv6 ip protocol 1 icmp type 8 accept')).toEqual([
      m(pl('tcp', 'dport'), { set: [22, 443, { range: [8000, 8080] }] }),
      m({ meta: { key: 'l4proto' } }, 'ipv6-icmp'),
      m(pl('ip', 'protocol'), 'icmp'),
      m(pl('icmp', 'type'), 'echo-request'),
      { accept: null },
    ]);
  });

  it('drops an explicit protocol match that nft would add itself as a dependency, as nft prints it', () => {
    expect(exprOf('meta l4proto ipv6-icmp icmpv6 code 4 accept')).toEqual([
      m(pl('icmpv6', 'code'), 'port-unreachable'),
      { accept: null },
    ]);
    expect(exprOf('ip protocol tcp tcp dport 22 accept', 'ip')).toEqual([m(pl('tcp', 'dport'), 22), { accept: null }]);
    // in inet the dependency is meta l4proto, so an explicit ip protocol stays
    expect(exprOf('ip protocol tcp tcp dport 22 accept')).toHaveLength(3);
  });

  it('uses op `in` for bit-flag values given without an operator', () => {
    expect(exprOf('ct state established,related ct status dnat tcp flags == syn accept')).toEqual([
      m({ ct: { key: 'state' } }, ['established', 'related'], 'in'),
      m({ ct: { key: 'status' } }, 'dnat', 'in'),
      m(pl('tcp', 'flags'), 'syn'),
      { accept: null },
    ]);
  });

  it('parses masks: meta mark and/&, tcp flags with / and & (a|b)', () => {
    expect(exprOf('meta mark and 0xff == 0x1 tcp flags syn / syn,ack tcp flags & (syn|ack) == syn accept')).toEqual([
      m({ '&': [{ meta: { key: 'mark' } }, 255] }, 1),
      m({ '&': [pl('tcp', 'flags'), ['syn', 'ack']] }, 'syn'),
      m({ '&': [pl('tcp', 'flags'), ['syn', 'ack']] }, 'syn'),
      { accept: null },
    ]);
  });

  it('parses concatenations, vmaps and named set references', () => {
    expect(exprOf('ip saddr . tcp dport { 1.2.3.4 . 22, 5.6.7.8 . http } accept')[0]).toEqual(
      m(
        { concat: [pl('ip', 'saddr'), pl('tcp', 'dport')] },
        { set: [{ concat: ['1.2.3.4', 22] }, { concat: ['5.6.7.8', 80] }] },
      ),
    );
    expect(exprOf('tcp dport vmap { 22 : accept, 80 : jump web }')).toEqual([
      {
        vmap: {
          key: pl('tcp', 'dport'),
          data: {
            set: [
              [22, { accept: null }],
              [80, { jump: { target: 'web' } }],
            ],
          },
        },
      },
    ]);
    expect(exprOf('iifname @lan tcp dport vmap @ports')).toEqual([
      m({ meta: { key: 'iifname' } }, '@lan'),
      { vmap: { key: pl('tcp', 'dport'), data: '@ports' } },
    ]);
  });

  it('parses statements the way nft -j prints them', () => {
    expect(
      exprOf(
        'limit rate over 10/minute burst 5 packets log prefix "x: " level warn quota 100 mbytes counter meta mark set 0x1 ct mark set mark notrack',
      ),
    ).toEqual([
      { limit: { rate: 10, per: 'minute', burst: 5, inv: true } },
      { log: { prefix: 'x: ' } },
      { quota: { val: 100, val_unit: 'mbytes' } },
      { counter: { packets: 0, bytes: 0 } },
      { mangle: { key: { meta: { key: 'mark' } }, value: 1 } },
      { mangle: { key: { ct: { key: 'mark' } }, value: { meta: { key: 'mark' } } } },
      { notrack: null },
    ]);
  });

  it('parses reject variants with the family default and the tcp dependency nft adds', () => {
    expect(exprOf('reject', 'ip')).toEqual([{ reject: { type: 'icmp', expr: 'port-unreachable' } }]);
    expect(exprOf('reject')).toEqual([{ reject: { type: 'icmpx', expr: 'port-unreachable' } }]);
    expect(exprOf('reject with icmpx type admin-prohibited')).toEqual([
      { reject: { type: 'icmpx', expr: 'admin-prohibited' } },
    ]);
    expect(exprOf('counter reject with tcp reset')).toEqual([
      m({ meta: { key: 'l4proto' } }, 'tcp'),
      { counter: { packets: 0, bytes: 0 } },
      { reject: { type: 'tcp reset' } },
    ]);
  });

  it('parses nat statements', () => {
    expect(exprOf('dnat ip to 10.0.0.1:80')).toEqual([{ dnat: { family: 'ip', addr: '10.0.0.1', port: 80 } }]);
    expect(exprOf('dnat to 10.0.0.3-10.0.0.5:80-90', 'ip')).toEqual([
      { dnat: { addr: { range: ['10.0.0.3', '10.0.0.5'] }, port: { range: [80, 90] } } },
    ]);
    expect(exprOf('dnat ip6 to [2001:db8::1]:443')).toEqual([
      { dnat: { family: 'ip6', addr: '2001:db8::1', port: 443 } },
    ]);
    expect(exprOf('snat to 192.0.2.1', 'ip')).toEqual([{ snat: { addr: '192.0.2.1' } }]);
    expect(exprOf('masquerade')).toEqual([{ masquerade: null }]);
    expect(exprOf('redirect to :8080')).toEqual([{ redirect: { port: 8080 } }]);
  });

  it('parses verdicts', () => {
    expect(
      exprOf('jump web').concat(exprOf('goto web'), exprOf('return'), exprOf('continue'), exprOf('queue')),
    ).toEqual([
      { jump: { target: 'web' } },
      { goto: { target: 'web' } },
      { return: null },
      { continue: null },
      { queue: null },
    ]);
  });

  it('keeps an unknown expression as an opaque entry and still parses the rest of the rule', () => {
    expect(exprOf('tcp dport 22 osf name "Linux" counter accept')).toEqual([
      m(pl('tcp', 'dport'), 22),
      { $opaque: 'osf name "Linux"' },
      { counter: { packets: 0, bytes: 0 } },
      { accept: null },
    ]);
  });

  it('turns an unknown expression into an opaque match of the IR', () => {
    const rs = parseNftText('table inet t {\n chain c {\n  tcp option maxseg size 1400 drop\n }\n}\n', 'o.nft');
    const rule = rs.tables[0]?.chains[0]?.rules[0];
    expect(rs.format).toBe('nft-text');
    expect(rule?.matches.map((x) => x.kind)).toContain('opaque');
    expect(rule?.verdict).toEqual({ kind: 'drop' });
    expect(rule?.origin).toMatchObject({ file: 'o.nft', line: 3, column: 3 });
  });

  it('makes an opaque entry an unsupported-expression match with its source text and a located warning', () => {
    const rs = parseNftText('table inet t {\n chain c {\n  tcp dport 22 osf name "Linux" accept\n }\n}\n', 'o.nft');
    const rule = rs.tables[0]?.chains[0]?.rules[0];
    expect(rule?.matches).toEqual([
      expect.objectContaining({ kind: 'field', field: 'l4proto' }),
      expect.objectContaining({ kind: 'field', field: 'dport' }),
      {
        kind: 'opaque',
        category: 'unsupported-expression',
        reason: 'this expression is not understood',
        text: 'osf name "Linux"',
      },
    ]);
    expect(rule?.verdict).toEqual({ kind: 'accept' });
    expect(rs.warnings).toEqual([
      {
        code: 'nft-unsupported-expression',
        message: expect.stringContaining('osf name "Linux"'),
        origin: { file: 'o.nft', line: 3, column: 3 },
      },
    ]);
  });
});

/** nat statements whose target is a map lookup, with the JSON nft 1.0.6 prints for each (checked in a namespace). */
const NAT_MAPS_TEXT = `table ip natmap {
	map fwdmap {
		type ipv4_addr : ipv4_addr
		elements = { 192.0.2.1 : 10.0.0.1 }
	}
	map pm {
		type inet_service : ipv4_addr . inet_service
		elements = { 80 : 10.0.0.2 . 8080 }
	}
	map im {
		type ipv4_addr : interval ipv4_addr
		flags interval
		elements = { 10.0.0.1 : 10.0.0.2-10.0.0.4 }
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		dnat to ip saddr map @fwdmap
		dnat ip to tcp dport map { 80 : 10.0.0.2, 8080 : 10.0.0.3 }
		dnat ip addr . port to tcp dport map @pm
		dnat ip to tcp dport map { 80 : 10.0.0.2 . 8080 }
		dnat to ip saddr map @im
		dnat to ip saddr . tcp dport map { 10.0.0.1 . 80 : 10.0.0.2 }
		meta l4proto tcp dnat to ip saddr map @fwdmap:80
		meta l4proto tcp dnat to ip saddr map { 10.0.0.1 : 10.0.0.2 }:tcp dport map { 80 : 8080 }
		dnat ip to 10.0.0.1
		tcp dport 1-1000 redirect to :tcp dport map { 80 : 8080 }
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		snat to ip saddr map @fwdmap
	}
}
table inet natinet {
	map fwdmap {
		type ipv4_addr : ipv4_addr
		elements = { 192.0.2.1 : 10.0.0.1 }
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		dnat ip to ip saddr map @fwdmap
		dnat ip to tcp dport map { 80 : 10.0.0.2, 8080 : 10.0.0.3 }
	}
}
table ip6 nat6 {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		dnat to tcp dport map { 80 : 2001:db8::5 }
	}
}
`;

describe('nft text parser: map-valued nat targets', () => {
  const m = (left: unknown, right: unknown, op = '=='): unknown => ({ match: { op, left, right } });
  const pl = (protocol: string, field: string): unknown => ({ payload: { protocol, field } });
  const saddr = pl('ip', 'saddr');
  const dport = pl('tcp', 'dport');
  const natOf = (table: string, chain: string) =>
    rulesOf(nftTextToJson(NAT_MAPS_TEXT, 'nat-maps.nft'))
      .filter((r) => r.table === table && r.chain === chain)
      .map((r) => r.expr);

  it('builds the JSON nft prints (family only for ranged or address . port maps in ip tables)', () => {
    const map = (key: unknown, data: unknown) => ({ map: { key, data } });
    expect(natOf('natmap', 'pre')).toEqual([
      [{ dnat: { addr: map(saddr, '@fwdmap') } }],
      [
        {
          dnat: {
            addr: map(dport, {
              set: [
                [80, '10.0.0.2'],
                [8080, '10.0.0.3'],
              ],
            }),
          },
        },
      ],
      [{ dnat: { family: 'ip', addr: map(dport, '@pm') } }],
      [{ dnat: { family: 'ip', addr: map(dport, { set: [[80, { concat: ['10.0.0.2', 8080] }]] }) } }],
      [{ dnat: { family: 'ip', addr: map(saddr, '@im') } }],
      [{ dnat: { addr: map({ concat: [saddr, dport] }, { set: [[{ concat: ['10.0.0.1', 80] }, '10.0.0.2']] }) } }],
      [m({ meta: { key: 'l4proto' } }, 'tcp'), { dnat: { addr: map(saddr, '@fwdmap'), port: 80 } }],
      [
        m({ meta: { key: 'l4proto' } }, 'tcp'),
        {
          dnat: {
            addr: map(saddr, { set: [['10.0.0.1', '10.0.0.2']] }),
            port: map(dport, { set: [[80, 8080]] }),
          },
        },
      ],
      [{ dnat: { addr: '10.0.0.1' } }],
      [m(dport, { range: [1, 1000] }), { redirect: { port: map(dport, { set: [[80, 8080]] }) } }],
    ]);
    expect(natOf('natinet', 'pre')[0]).toEqual([{ dnat: { family: 'ip', addr: map(saddr, '@fwdmap') } }]);
    expect(natOf('nat6', 'pre')[0]).toEqual([{ dnat: { addr: map(dport, { set: [[80, '2001:db8::5']] }) } }]);
  });

  it.skipIf(!HAS_NFT)('builds exactly what nft -j list ruleset prints for them', () => {
    expect(normalise(nftTextToJson(NAT_MAPS_TEXT, 'nat-maps.nft'))).toEqual(normalise(kernelJsonOfText(NAT_MAPS_TEXT)));
  });

  it('gives a nat verdict without a fixed address, applied only to keys in the map', () => {
    const rs = parseNftText(NAT_MAPS_TEXT, 'nat-maps.nft');
    const post = rs.tables[0]?.chains.find((c) => c.name === 'post')?.rules[0];
    expect(post?.verdict).toEqual({ kind: 'nat', type: 'snat', family: 'ipv4', text: 'snat to ip saddr map @fwdmap' });
    expect(post?.matches).toEqual([
      expect.objectContaining({ kind: 'field', field: 'ip.saddr', op: 'eq', set: 'fwdmap' }),
    ]);
    expect(rs.warnings.map((w) => w.origin?.line)).toContain(30);
  });

  it('parses the map-valued dnat of the nat.json fixture source (nft-json/nat.nft line 50)', () => {
    const file = join(FIXTURES, '../nft-json/nat.nft');
    const rs = parseNftText(readFileSync(file, 'utf8'), file);
    const rule = rs.tables.find((t) => t.name === 'natmap')?.chains[0]?.rules[0];
    expect(rule?.origin).toMatchObject({ line: 50, column: 3 });
    expect(rule?.verdict).toEqual({ kind: 'nat', type: 'dnat', family: 'ipv4', text: 'dnat to ip saddr map @fwdmap' });
    expect(rule?.matches).toEqual([expect.objectContaining({ field: 'ip.saddr', set: 'fwdmap' })]);
  });

  it('rejects a nat map without a map to look up', () => {
    const e = parseError('table ip t {\n chain c {\n  dnat to ip saddr 10.0.0.1\n }\n}\n');
    expect([e.line, e.column, e.expected]).toEqual([3, 20, "'map' and the map to look the translation up in"]);
  });
});

describe('nft text parser: reject types', () => {
  const kinds = (text: string, family: string) =>
    parseNftText(`table ${family} t {\n chain c {\n  ${text}\n }\n}\n`, 'r.nft').tables[0]?.chains[0]?.rules[0]
      ?.matches;

  it('gives reject with tcp reset its tcp condition in every family', () => {
    for (const family of ['ip', 'ip6', 'inet']) {
      expect(kinds('reject with tcp reset', family)).toEqual([
        expect.objectContaining({
          kind: 'field',
          field: 'l4proto',
          op: 'eq',
          values: [{ kind: 'range', lo: 6n, hi: 6n }],
        }),
      ]);
    }
  });

  it('gives reject with icmp / icmpv6 their family condition in inet tables, and icmpx none', () => {
    const nf = (value: string) => [
      expect.objectContaining({ kind: 'field', field: 'nfproto', values: [{ kind: 'symbol', value }] }),
    ];
    expect(kinds('reject with icmp type host-unreachable', 'inet')).toEqual(nf('ipv4'));
    expect(kinds('reject with icmpv6 type admin-prohibited', 'inet')).toEqual(nf('ipv6'));
    expect(kinds('reject with icmpx type admin-prohibited', 'inet')).toEqual([]);
    expect(kinds('reject', 'inet')).toEqual([]);
  });
});

describe('nft text parser: the founding outage', () => {
  it('reads a web server whose input policy drops everything but ssh', () => {
    const rs = parseNftText(fixture('founding-outage.nft'), 'founding-outage.nft');
    const input = rs.tables[0]?.chains.find((c) => c.name === 'input');
    expect(input?.base).toMatchObject({ hook: 'input', policy: 'drop', priority: 0 });
    expect(input?.rules.map((r) => r.text)).toEqual([
      'ct state established,related accept',
      'iifname "lo" accept',
      'tcp dport 22 accept',
    ]);
  });
});

describe('nft text parser: errors', () => {
  it.each([
    ['an unbalanced brace', 'table ip t {\n chain c {\n  accept\n', 4, 1, "'}'"],
    ['a chain outside a table', 'chain input {\n type filter hook input priority 0;\n}\n', 1, 13, 'a chain name'],
    ['priority garbage', 'table ip t { chain c { type filter hook input priority banana; }; }', 1, 56, 'a priority'],
    ['a missing table name', 'table inet {\n}\n', 1, 12, 'a table name'],
    ['a missing chain name', 'table ip t {\n chain {\n }\n}\n', 2, 8, 'a chain name'],
    ['an unknown hook', 'table ip t { chain c { type filter hook sideways priority 0; }; }', 1, 41, 'a hook'],
    ['an invalid address', 'table ip t { chain c { ip saddr 10.0.0.300 accept; }; }', 1, 33, 'an IPv4 address'],
    ['an unknown service name', 'table ip t { chain c { tcp dport nosuchservice accept; }; }', 1, 34, 'a port number'],
    ['a rule for a missing chain', 'table ip t { }\nadd rule ip t nope accept\n', 2, 15, 'an existing chain'],
    ['an unterminated string', 'table ip t { comment "oops\n}', 1, 22, "'\"'"],
    ['an unknown top-level command', 'tabel ip t { }', 1, 1, 'a command'],
  ])('rejects %s with file:line:column, the token and what was expected', (_what, text, line, column, expected) => {
    const e = parseError(text);
    expect(e.file).toBe('bad.nft');
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.expected).toContain(expected);
    expect(e.message).toMatch(/^bad\.nft:\d+:\d+: /);
  });

  it('names the unbalanced brace when the input ends inside an anonymous set', () => {
    const e = parseError('table ip t { chain c { tcp dport { 22, 80 accept\n');
    expect(e.expected).toContain("'}'");
  });

  it('refuses sets nested thousands deep with a positioned error instead of exhausting the stack', () => {
    const e = parseError(`table ip t { chain c { tcp dport ${'{'.repeat(20000)} 22 accept\n`);
    expect(e.message).toMatch(/^bad\.nft:1:\d+: sets nested too deeply; expected at most 64 nested sets$/);
  });
});

describe('parseNftText: constructs of real rulesets (test/fixtures/real-world)', () => {
  const REAL = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/real-world');
  /** Parses a corpus file with its absolute includes resolved under the repository's directory. */
  const real = (root: string, path: string) =>
    parseNftText(readFileSync(join(REAL, root, path), 'utf8'), `${root}/${path}`, {
      include: (p) => [{ file: p, text: readFileSync(join(REAL, root, p), 'utf8') }],
    });
  const rulesOf = (rs: ReturnType<typeof parseNftText>) => rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));

  it('reads meter statements: a gate that a fresh source passes or not, and when the other outcome happens', () => {
    const rs = real('djidji3--nftables', 'etc/nftables.conf');
    const ssh = rulesOf(rs).find((r) => r.text.includes('meter ssh-input-limit'));
    expect(ssh?.verdict).toEqual({ kind: 'drop' });
    // `limit rate over 2/minute`: a new source is not over it, so the drop does not apply to an ordinary connection.
    expect(ssh?.matches.at(-1)).toMatchObject({
      kind: 'opaque',
      category: 'limit',
      fresh: false,
      otherwise: 'above 2/minute for one tcp dport . ip saddr',
      text: 'meter ssh-input-limit size 65535 { tcp dport . ip saddr limit rate over 2/minute }',
    });
    expect(rs.warnings).toEqual([]);
  });

  it('reads dynamic set updates with a rate or a connection count inside', () => {
    const rs = real('dfinity--http-gateway-release', 'etc/nftables.conf');
    const [rate, conns] = rulesOf(rs).filter((r) => r.text.includes('add @'));
    expect(rate?.matches.at(-1)).toMatchObject({
      kind: 'opaque',
      fresh: false,
      otherwise: 'above 2000/minute for one ip saddr',
    });
    expect(conns?.matches.at(-1)).toMatchObject({
      kind: 'opaque',
      fresh: false,
      otherwise: 'with more than 400 connections for one ip saddr',
    });
    expect(rate?.statements[0]).toMatchObject({ kind: 'other' });
  });

  it('reads bitwise flag tests with a combination on the right (`== syn|ack`, `== (syn | ack)`)', () => {
    const one = (rule: string) =>
      parseNftText(`table inet t {\n chain i {\n  type filter hook input priority 0;\n  ${rule}\n }\n}\n`, 't.nft')
        .tables[0]!.chains[0]!.rules[0]!.matches;
    for (const rule of ['tcp flags & (syn|ack) == syn|ack drop', 'tcp flags & (syn | ack) == (syn | ack) drop']) {
      expect(one(rule).at(-1)).toMatchObject({
        field: 'tcp.flags',
        mask: 18n,
        values: [{ kind: 'range', lo: 18n, hi: 18n }],
      });
    }
    // A contiguous netmask on an address is the prefix nft makes of it; other masks stay opaque.
    expect(one('ip saddr & 255.255.255.0 == 10.0.0.0 drop')[0]).toMatchObject({
      field: 'ip.saddr',
      values: [{ kind: 'range', lo: 0x0a000000n, hi: 0x0a0000ffn }],
    });
    expect(one('ip saddr & 255.0.255.0 == 10.0.0.0 drop')[0]).toMatchObject({ kind: 'opaque' });
    // ct mark is the connection's: a new connection's is 0, so `& 0xff == 0x1` does not hold for it.
    expect(one('ct mark & 0xff == 0x1 accept')[0]).toMatchObject({ kind: 'opaque', fresh: false });
    expect(one('ct mark != 0x2 accept')[0]).toMatchObject({ kind: 'opaque', fresh: true });
  });
});

describe('parseNftText: header properties the model knows for its packets', () => {
  const one = (rule: string) =>
    parseNftText(`table inet t {\n chain i {\n  type filter hook input priority 0;\n  ${rule}\n }\n}\n`, 't.nft')
      .tables[0]!.chains[0]!.rules[0]!.matches;

  it('decides meta pkttype from the destination type, and ip hdrlength as 5 (no IP options), on IPv4 only', () => {
    expect(one('pkttype { broadcast, multicast } drop')[0]).toMatchObject({
      kind: 'opaque',
      fresh: false,
      decide: { kind: 'pkttype', values: ['broadcast', 'multicast'], negate: false },
    });
    expect(one('ip hdrlength != 5 drop')).toMatchObject([
      { kind: 'field', field: 'nfproto' },
      { kind: 'opaque', fresh: false, decide: { kind: 'constant', holds: false } },
    ]);
  });

  it('decides ct status from the path: no status bit on a new connection that no nat touched', () => {
    expect(one('ct status dnat accept')[0]).toMatchObject({
      kind: 'opaque',
      fresh: false,
      decide: { kind: 'ct-status', bits: ['dnat'], negate: false },
    });
  });
});
