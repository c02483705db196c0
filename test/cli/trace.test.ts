import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner, ensureBuilt, main, rampart as rampartProcess } from './cli.js';

const fixture = (name: string) => `test/fixtures/nftables/${name}`;

beforeAll(() => {
  ensureBuilt();
  expect(existsSync(main)).toBe(true);
}, 180_000);

/** Runs sharing one process (cliRunner); the first test starts the built CLI as its own process, as a user does. */
const rampart = cliRunner();
afterAll(() => rampart.close());

const https = ['--hook', 'input', '--iif', 'eth0', '--src', '203.0.113.7', '--dst', '192.0.2.10'];
const tcp443 = [...https, '--proto', 'tcp', '--sport', '40000', '--dport', '443'];

describe('rampart trace: human output', () => {
  it('prints the verdict first, naming the policy that dropped the packet, and exits 0', async () => {
    const r = await rampartProcess('trace', fixture('founding-outage.nft'), ...tcp443);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`verdict: DROP  (policy drop of filter/input at ${fixture('founding-outage.nft')}:9)`);
    expect(r.stdout).toContain('input: inet filter/input  (filter, priority 0, policy drop)');
  });

  it('names the deciding rule with file:line and its text', async () => {
    const r = await rampart('trace', fixture('founding-outage.nft'), ...https, '--dport', '22', '--sport', '50000');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      `verdict: ACCEPT  (rule filter/input #3 at ${fixture('founding-outage.nft')}:13: "tcp dport 22 accept")`,
    );
    expect(r.stdout).toMatch(
      /input #3 {2}test\/fixtures\/nftables\/founding-outage\.nft:13 {2}"tcp dport 22 accept" {2}=> accept/,
    );
  });

  it('shows every base chain visited: an accept does not stop a later base chain from dropping', async () => {
    const r = await rampart('trace', fixture('multi-chain.nft'), ...https, '--dport', '8080', '--sport', '40000');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toContain('verdict: DROP  (rule guard/input #1');
    const chains = r.stdout.split('\n').filter((l) => /^ {2}input: /.test(l));
    expect(chains.map((l) => l.split('  ')[1])).toEqual([
      'input: ip early/input',
      'input: inet filter/input',
      'input: inet guard/input',
    ]);
  });

  it('says when the verdict rests on a rate limit, and what happens otherwise', async () => {
    const r = await rampart('trace', fixture('hardened-web.nft'), ...https, '--icmp-type', 'echo-request');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toContain('verdict: ACCEPT');
    expect(r.stdout).toContain('for an ordinary new connection from a fresh source:');
    expect(r.stdout).toContain(
      '"limit rate 10/second burst 20 packets" matches (matches only while the rate is under 10/second)',
    );
    expect(r.stdout).toContain('  above 10/second: DROP  (rule filter/input #16');
  });

  it('notes an interface left unspecified when a rule needed it', async () => {
    const r = await rampart(
      'trace',
      fixture('hardened-web.nft'),
      '--src',
      '203.0.113.7',
      '--dst',
      '192.0.2.10',
      '--dport',
      '8443',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no input interface was given (--iif)');
  });
});

describe('rampart trace --json', () => {
  it('prints the result object with verdict, path and decidedBy', async () => {
    const r = await rampart('trace', fixture('founding-outage.nft'), ...tcp443, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.verdict).toBe('drop');
    expect(out.path.map((s: { kind: string }) => s.kind)).toEqual(['chain', 'policy']);
    expect(out.decidedBy).toMatchObject({ kind: 'policy', table: 'filter', chain: 'input', policy: 'drop', line: 9 });
    expect(out.packet).toMatchObject({ family: 'ipv4', l4proto: 6, dport: 443, ctState: 'new' });
    expect(out.uncertain).toBe(false);
  });

  it('reports bad input as a JSON error on stderr with exit code 2', async () => {
    const r = await rampart('trace', fixture('founding-outage.nft'), '--src', 'nope', '--dst', '192.0.2.10', '--json');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'RAMPART_ERR_PACKET' });
  });
});

describe('rampart trace: bad input exits 2 with a clear message', () => {
  const cases: [string, string[], string][] = [
    ['a malformed address', ['--src', '1.2.3', '--dst', '192.0.2.10'], "--src '1.2.3': not an IPv4 or IPv6 address"],
    [
      'addresses of two families',
      ['--src', '203.0.113.7', '--dst', '2001:db8::1'],
      'is IPv4 but --dst 2001:db8::1 is IPv6',
    ],
    ['a port out of range', ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--dport', '70000'], "--dport '70000'"],
    [
      'a port for a protocol without ports',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--proto', 'icmp', '--dport', '80'],
      'protocol icmp has no ports',
    ],
    [
      'an unknown protocol',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--proto', 'tcpp'],
      "--proto 'tcpp': unknown protocol",
    ],
    [
      'an unknown ct state',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--ct-state', 'open'],
      'expected one of new, established, related, invalid, untracked',
    ],
    [
      'an unknown hook',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--hook', 'inptu'],
      "--hook 'inptu': unknown hook",
    ],
    [
      'an unknown ICMP type',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--icmp-type', 'pingg'],
      "--icmp-type 'pingg': unknown ICMP type",
    ],
    [
      'icmp with IPv6 addresses',
      ['--src', '2001:db8::7', '--dst', '2001:db8::1', '--proto', 'icmp'],
      'use --proto icmpv6',
    ],
    [
      'an unknown tcp flag',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--tcp-flags', 'syn,fyn'],
      "unknown flag 'fyn'",
    ],
    [
      'a mark too large',
      ['--src', '203.0.113.7', '--dst', '192.0.2.10', '--mark', '0x100000000'],
      "--mark '0x100000000'",
    ],
    ['a missing --src', ['--dst', '192.0.2.10'], '--src is required'],
  ];
  for (const [what, args, message] of cases) {
    it(`rejects ${what}`, async () => {
      const r = await rampart('trace', fixture('founding-outage.nft'), ...args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(message);
    });
  }

  it('rejects a missing ruleset file', async () => {
    const r = await rampart('trace', 'no/such/file.nft', ...tcp443);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot read ruleset file 'no/such/file.nft'");
  });
});
