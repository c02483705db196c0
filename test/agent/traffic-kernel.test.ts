/**
 * The agent's counter and HAProxy traffic sources on a real kernel and a real HAProxy: a namespace this test
 * creates (the measured host) with a veth peer in a second one that opens real TCP connections to it. The counters
 * of the rules that accept the port give the new connections accepted per window, for nftables and for iptables;
 * replacing the ruleset (counters back to zero) is a reset, never a negative rate; a rule without a counter is said,
 * not given one. HAProxy's `show stat` over its stats socket gives a backend's requests and 5xx per window.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrafficSources } from '../../src/agent/protocol.js';
import { TrafficMeter } from '../../src/agent/traffic.js';
import { createTestNamespace, kernelSkipReason, listNamespaces, type TestNamespace } from './ns.js';

const skip = kernelSkipReason(['nft', 'ip', 'iptables-restore', 'haproxy', 'curl']);
if (skip && process.env.CI === 'true') throw new Error(`CI needs the agent kernel tests: ${skip}`);

const W = 5000;
const T0 = Math.floor(Date.now() / 60_000) * 60_000;
const HOST = '10.213.0.1';

const NFT = (withCounter: boolean) => `table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 80 ${withCounter ? 'counter ' : ''}accept
    tcp dport 81 accept
  }
}
`;
const IPT = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
`;

describe.skipIf(skip !== undefined)('agent traffic from rule counters and HAProxy (real kernel, real HAProxy)', () => {
  let host: TestNamespace;
  let peer: TestNamespace;
  let dir: string;
  const logs: string[] = [];
  let haproxy: ChildProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-traffic-kernel-'));
    host = createTestNamespace();
    peer = createTestNamespace();
    host.run(['ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1', 'netns', peer.name]);
    host.run(['ip', 'addr', 'add', `${HOST}/24`, 'dev', 'tv0']);
    host.run(['ip', 'link', 'set', 'tv0', 'up']);
    peer.run(['ip', 'addr', 'add', '10.213.0.2/24', 'dev', 'tv1']);
    peer.run(['ip', 'link', 'set', 'tv1', 'up']);
  });
  afterAll(() => {
    if (haproxy?.pid) process.kill(haproxy.pid, 'SIGKILL');
    host?.remove();
    peer?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(listNamespaces()).not.toMatch(new RegExp(`${host?.name}|${peer?.name}`));
  });

  /** `n` TCP connections from the peer to the host's port (refused by the host after the firewall accepted them). */
  const connect = (n: number, port = 80) =>
    peer.run(['bash', '-c', `for i in $(seq ${n}); do (exec 3<>/dev/tcp/${HOST}/${port}) 2>/dev/null; done; true`]);

  const meter = (firewall: 'nftables' | 'iptables') =>
    new TrafficMeter({
      stateDir: join(dir, `state-${firewall}`),
      exec: host.exec,
      firewall: () => firewall,
      call: async () => {
        throw new Error('no server in this test');
      },
      log: (l) => logs.push(l),
    });
  const sources: TrafficSources = {
    windowMs: W,
    services: [
      { service: 'shop', logs: [], counters: [{ proto: 'tcp', from: 80, to: 80 }] },
      { service: 'admin', logs: [], counters: [{ proto: 'tcp', from: 81, to: 81 }] },
    ],
  };
  const counted = (m: TrafficMeter, service = 'shop') =>
    m
      .pendingSamples()
      .filter((s) => s.service === service)
      .map((s) => [s.source, s.start - T0, s.requests]);

  it('nftables: new connections accepted per window; a replaced ruleset is a reset; no counter is said', async () => {
    host.run(['nft', '-f', '-'], NFT(true));
    const m = meter('nftables');
    await m.configure(sources, T0);
    await m.tick(T0 + 50); // baseline
    connect(5);
    await m.tick(T0 + W + 50);
    connect(3);
    await m.tick(T0 + 2 * W + 50);
    // the ruleset is replaced (counters start again from 0), then 2 connections
    host.run(['nft', '-f', '-'], `flush ruleset\n${NFT(true)}`);
    connect(2);
    await m.tick(T0 + 3 * W + 50);
    await m.tick(T0 + 4 * W + 50);
    expect(counted(m)).toEqual([
      ['counters', 0, 5],
      ['counters', W, 3],
      ['counters', 2 * W, 2],
      ['counters', 3 * W, 0],
    ]);
    expect(counted(m, 'admin')).toEqual([]);
    expect(logs.filter((l) => /has no counter statement/.test(l))).toEqual([
      "traffic admin: the rule 'inet filter input: tcp dport 81 accept' has no counter statement: it is not counted (the agent never adds one; add 'counter' to it)",
    ]);
    // read-only: the ruleset is exactly what was loaded
    expect(host.run(['nft', 'list', 'ruleset'])).not.toMatch(/dport 81 counter/);
    host.run(['nft', 'flush', 'ruleset']);
  });

  it('iptables: the same from iptables-save -c', async () => {
    host.run(['iptables-restore'], IPT);
    const m = meter('iptables');
    await m.configure({ windowMs: W, services: [sources.services[0] as TrafficSources['services'][number]] }, T0);
    await m.tick(T0 + 50);
    connect(4);
    await m.tick(T0 + W + 50);
    host.run(['iptables-restore'], IPT); // replaced: counters back to 0
    connect(1);
    await m.tick(T0 + 2 * W + 50);
    host.run(['iptables', '-I', 'INPUT', '1', '-p', 'icmp', '-j', 'ACCEPT']); // by hand, above it: the same rule still
    connect(2);
    await m.tick(T0 + 3 * W + 50);
    expect(counted(m)).toEqual([
      ['counters', 0, 4],
      ['counters', W, 1],
      ['counters', 2 * W, 2],
    ]);
    host.run(
      ['iptables-restore'],
      '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
    );
    host.run(['nft', 'flush', 'ruleset']);
  });

  it("HAProxy: a backend's requests and 5xx per window from show stat", async () => {
    const sock = join(dir, 'haproxy.sock');
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      `global
  stats socket ${sock} mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend front
  bind 127.0.0.1:8080
  default_backend shop
backend shop
  http-request return status 200 content-type text/plain string ok if { path /ok }
  server gone 127.0.0.1:1
`,
    );
    haproxy = spawn('ip', ['netns', 'exec', host.name, 'haproxy', '-db', '-f', cfg], { stdio: 'ignore' });
    const get = (path: string, n: number) =>
      host.run(['bash', '-c', `for i in $(seq ${n}); do curl -s -o /dev/null http://127.0.0.1:8080${path}; done`]);
    for (let i = 0; i < 50; i++) {
      try {
        get('/ok', 1);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const m = meter('nftables');
    await m.configure(
      {
        windowMs: W,
        services: [{ service: 'shop', logs: [], counters: [], haproxy: { socket: sock, backend: 'shop' } }],
      },
      T0,
    );
    await m.tick(T0 + 50);
    get('/ok', 6);
    get('/fail', 2); // the only server refuses: 503
    await m.tick(T0 + W + 50);
    get('/ok', 1);
    await m.tick(T0 + 2 * W + 50);
    expect(m.pendingSamples().map((s) => [s.source, s.start - T0, s.requests, s.errors])).toEqual([
      ['haproxy', 0, 8, 2],
      ['haproxy', W, 1, 0],
    ]);
  });
});
