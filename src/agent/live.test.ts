import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { parseProcNet, parseSs, readListeningSockets, readLiveRuleset } from './live.js';

// Captured with iproute2 6.1.0 inside a namespace: python sockets on *:8081 (dual-stack), [::1]:8082 (v6only),
// 127.0.0.1:8083, udp 0.0.0.0:5353 and udp [::]:5354 (v6only).
const SS = `udp UNCONN 0      0        0.0.0.0:5353 0.0.0.0:* users:(("python3",pid=663,fd=6))
udp UNCONN 0      0           [::]:5354    [::]:* users:(("python3",pid=663,fd=7))
tcp LISTEN 0      128    127.0.0.1:8083 0.0.0.0:* users:(("python3",pid=663,fd=5))
tcp LISTEN 0      128            *:8081       *:* users:(("python3",pid=663,fd=3))
tcp LISTEN 0      128        [::1]:8082    [::]:* users:(("python3",pid=663,fd=4))
`;
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F93 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 776094 1 000000000455c9cd 100 0 0 10 0
   1: 0100007F:1F94 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 776099 1 000000000455c9cd 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 776092 1 000000008683d8dc 100 0 0 10 0
   1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 776093 1 00000000d066a181 100 0 0 10 0
   2: B80D0120000000000000000011000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 776093 1 00000000d066a181 100 0 0 10 0
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
13119: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 776095 2 0000000082f8e6fe 0
`;

describe('parseSs', () => {
  it('reads listening tcp and unconnected udp sockets with their process, splitting dual-stack *', () => {
    expect(parseSs(SS)).toEqual([
      { proto: 'udp', address: '0.0.0.0', port: 5353, process: 'python3' },
      { proto: 'udp', address: '::', port: 5354, process: 'python3' },
      { proto: 'tcp', address: '127.0.0.1', port: 8083, process: 'python3' },
      { proto: 'tcp', address: '0.0.0.0', port: 8081, process: 'python3' },
      { proto: 'tcp', address: '::', port: 8081, process: 'python3' },
      { proto: 'tcp', address: '::1', port: 8082, process: 'python3' },
    ]);
  });

  it('drops interface scopes and works without -p', () => {
    expect(parseSs('udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*\ntcp LISTEN 0 5 [fe80::1]%eth0:22 [::]:*\n')).toEqual([
      { proto: 'udp', address: '127.0.0.53', port: 53 },
      { proto: 'tcp', address: 'fe80::1', port: 22 },
    ]);
    expect(parseSs('')).toEqual([]);
  });
});

describe('parseProcNet', () => {
  it('decodes host-order hex addresses and keeps only listening sockets', () => {
    expect(parseProcNet(TCP, 'tcp', 'ipv4')).toEqual([{ proto: 'tcp', address: '127.0.0.1', port: 8083 }]);
    expect(parseProcNet(TCP6, 'tcp', 'ipv6')).toEqual([
      { proto: 'tcp', address: '::', port: 8081 },
      { proto: 'tcp', address: '::1', port: 8082 },
      { proto: 'tcp', address: '2001:db8::11', port: 443 },
    ]);
    expect(parseProcNet(UDP, 'udp', 'ipv4')).toEqual([{ proto: 'udp', address: '0.0.0.0', port: 5353 }]);
  });
});

const isRoot = process.getuid?.() === 0;
const hasTools = ['nft', 'ip', 'ss'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);

describe('readLiveRuleset / readListeningSockets', () => {
  it('rejects a namespace that does not exist, and a bad name, with the flag in the message', async () => {
    await expect(readLiveRuleset({ netns: 'rampart-live-no-such-ns' })).rejects.toThrow(
      '--netns rampart-live-no-such-ns: no such network namespace',
    );
    await expect(readListeningSockets({ netns: '../etc' })).rejects.toBeInstanceOf(UserError);
  });

  it.skipIf(!isRoot || !hasTools)('reads an nft ruleset and sockets from a namespace it created', async () => {
    const ns = `rampart-live-${randomBytes(4).toString('hex')}`;
    const sh = (...argv: string[]) =>
      spawnSync(argv[0] ?? 'false', argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
    expect(sh('ip', 'netns', 'add', ns).status).toBe(0);
    try {
      // Empty namespace: no tables anywhere, reported from nft.
      const empty = await readLiveRuleset({ netns: ns });
      expect(empty.source).toBe('nft');
      expect(empty.ruleset.tables).toEqual([]);
      const load = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
        input:
          'table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n  tcp dport 22 accept\n }\n}\n',
        encoding: 'utf8',
      });
      expect(load.stderr).toBe('');
      const live = await readLiveRuleset({ netns: ns });
      expect(live).toMatchObject({ source: 'nft', file: `live:${ns}` });
      expect(live.ruleset.tables.map((t) => `${t.family} ${t.name}`)).toEqual(['inet filter']);
      expect(await readListeningSockets({ netns: ns })).toEqual([]);
    } finally {
      sh('ip', 'netns', 'del', ns);
    }
  });
});
