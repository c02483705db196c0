/**
 * The alert sources beyond monitoring (issue 15 §1), end to end through a real server: the part of Rampart that
 * knows something (drift computed from an agent's report, an agent's rollback, an apply that bypassed a freeze or
 * a blocked plan) writes an event, the alerting service turns it into an alert, and the route's real webhook
 * receiver on loopback is paged. The server's clock is the test's; its timers and the outbox are real.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpReceiver, httpReceiver } from '../alerting/receivers.js';
import { type Harness, startHarness } from './harness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const AGENTS = readFileSync(join(fixtures, 'config', 'agents.yaml'), 'utf8');
const FIXED = readFileSync(join(fixtures, 'queries', 'founding-fixed.nft'), 'utf8');
const OUTAGE = readFileSync(join(fixtures, 'nftables', 'founding-outage.nft'), 'utf8');
const WITH_8443 = FIXED.replace('tcp dport { 80, 443 } accept', 'tcp dport { 80, 443, 8443 } accept');

let clock = Date.parse('2026-12-03T10:00:00.000Z');
const now = () => new Date(clock);

async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Page {
  status: string;
  alerts: { state: string; labels: Record<string, string>; annotations: Record<string, string> }[];
}

describe('alert sources through the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let dir: string;
  const pages = () => team.requests.map((q) => JSON.parse(q.body) as Page);
  /** The first page with an alert of this name (and status) that is not among the pages seen before `after`. */
  const pageOf = (alertname: string, status: 'firing' | 'resolved', after = 0) =>
    until(`${alertname} ${status}`, () => {
      for (const p of pages().slice(after)) {
        const a = p.alerts.find((x) => x.labels.alertname === alertname && x.state === status);
        if (a) return a;
      }
      return undefined;
    });
  // Group timers follow the server's clock: move it on while waiting.
  const tickClock = setInterval(() => {
    clock += 1000;
  }, 200);

  beforeAll(async () => {
    team = await httpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'rampart-alert-sources-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `${AGENTS}  freeze:
    - {name: december release freeze, start: 2026-12-10T00:00:00Z, end: 2026-12-11T00:00:00Z}
alerting:
  receivers:
    - name: team
      webhook_configs: [{url: '${team.url}/hook'}]
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
`,
    );
    h = await startHarness('sqlite', { config, now });
  });
  afterAll(async () => {
    clearInterval(tickClock);
    await h?.close();
    await team?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function approved(host: string, ruleset: string, reason: string): Promise<number> {
    const p = await h.call('alice', 'POST', '/changes', { target: { host }, ruleset, reason });
    expect(p.status).toBe(201);
    const id = p.body.change.id as number;
    expect((await h.decide('bob', id, 'approve', {})).body.change.state).toBe('approved');
    return id;
  }
  const report = (text: string) =>
    h.call('web1', 'POST', '/agent/report', {
      at: new Date().toISOString(),
      firewall: 'nftables',
      live: { format: 'nft-text', text },
      sockets: [],
      state: 'idle',
    });

  it('pages FirewallDrift when web1’s live ruleset leaves the desired one, and resolves it when back in sync', async () => {
    const id = await approved('web1', FIXED, 'first managed ruleset');
    expect((await h.call('alice', 'POST', `/changes/${id}/apply`, {})).body.change.state).toBe('applying');
    const job = (await h.call('web1', 'GET', '/agent/next')).body.job;
    expect((await h.call('web1', 'POST', `/agent/jobs/${job.id}/confirm`, { local: [] })).body.confirmed).toBe(true);
    expect((await report(FIXED)).body.drift.inSync).toBe(true);
    // Someone opens MySQL by hand on web1.
    const drifted = await report(FIXED.replace('tcp dport 22 accept', 'tcp dport { 22, 3306 } accept'));
    expect(drifted.body.drift.inSync).toBe(false);
    const fired = await pageOf('FirewallDrift', 'firing');
    expect(fired.labels).toEqual({ alertname: 'FirewallDrift', severity: 'critical', host: 'web1' });
    expect(fired.annotations.summary).toBe(
      "web1's live ruleset differs from the desired one: 1 flow change against desired revision 1",
    );
    expect(fired.annotations.desired_revision).toBe('1');
    expect(fired.annotations.description).toMatch(/^input: .*3306.*: drop in desired, accept live$/);
    // The same drift reported again is not news: no second event.
    await report(FIXED.replace('tcp dport 22 accept', 'tcp dport { 22, 3306 } accept'));
    const seen = team.requests.length;
    expect((await report(FIXED)).body.drift.inSync).toBe(true);
    await pageOf('FirewallDrift', 'resolved', seen);
    const events = await h.store.monitoring.listEvents({ subject: 'host:web1' });
    expect(events.map((e) => e.kind)).toEqual(['host.drift', 'host.in-sync']);
  });

  it('pages ChangeRolledBack once when web1’s agent rolls a change back; a person resolves it by hand', async () => {
    const id = await approved('web1', WITH_8443, 'open 8443');
    await h.call('alice', 'POST', `/changes/${id}/apply`, {});
    const job = (await h.call('web1', 'GET', '/agent/next')).body.job;
    const ev = (kind: string, detail: string) =>
      h.call('web1', 'POST', `/agent/jobs/${job.id}/events`, { kind, at: '2026-12-03T10:05:00.000Z', detail });
    await ev('applied', 'ruleset loaded');
    await ev('health-failed', 'http :80/healthz: connection refused');
    await ev('rolled-back', 'snapshot restored');
    // Delivered twice (the agent retried): recorded once, one event, one alert.
    await ev('rolled-back', 'snapshot restored');
    const fired = await pageOf('ChangeRolledBack', 'firing');
    expect(fired.labels).toEqual({
      alertname: 'ChangeRolledBack',
      severity: 'critical',
      change: String(id),
      host: 'web1',
    });
    expect(fired.annotations).toMatchObject({
      summary: `change ${id} was rolled back on web1 by its agent`,
      description: 'snapshot restored',
    });
    expect(await h.store.monitoring.listEvents({ kind: 'agent.rollback' })).toHaveLength(1);
    const list = (await h.call('vic', 'GET', '/alerts?state=firing')).body.alerts as {
      fingerprint: string;
      labels: Record<string, string>;
    }[];
    const fp = list.find((a) => a.labels.alertname === 'ChangeRolledBack')?.fingerprint;
    const seen = team.requests.length;
    expect((await h.call('alice', 'POST', `/alerts/${fp}/resolve`)).status).toBe(200);
    await pageOf('ChangeRolledBack', 'resolved', seen);
  });

  it('pages ChangeOverride when a blocked plan is applied under an admin’s override', async () => {
    const p = await h.call('alice', 'POST', '/changes', {
      target: { host: 'web1' },
      ruleset: OUTAGE,
      reason: 'block all incoming traffic',
    });
    expect(p.body.plan.blocked).toBe(true);
    const id = p.body.change.id as number;
    expect((await h.decide('admin', id, 'override', { reason: 'LB drained for maintenance' })).status).toBe(200);
    expect((await h.decide('bob', id, 'approve', {})).status).toBe(200);
    expect((await h.call('alice', 'POST', `/changes/${id}/apply`, {})).status).toBe(200);
    const fired = await pageOf('ChangeOverride', 'firing');
    expect(fired.labels).toEqual({ alertname: 'ChangeOverride', severity: 'warning', change: String(id) });
    expect(fired.annotations).toMatchObject({
      summary: `change ${id} is applied with its blocked plan overridden by admin`,
      description: 'LB drained for maintenance',
      hosts: 'web1',
    });
    expect(fired.annotations.blockers).toMatch(/shop/);
  });

  it('pages ChangeEmergency when a change is applied inside a freeze as an emergency', async () => {
    clock = Date.parse('2026-12-10T12:00:00.000Z');
    const id = await approved('web2', FIXED, 'restore port 443 on web2');
    const ok = await h.call('alice', 'POST', `/changes/${id}/apply`, {
      emergency: { reason: 'checkout is down, restoring port 443' },
    });
    expect(ok.status).toBe(200);
    const fired = await pageOf('ChangeEmergency', 'firing');
    expect(fired.labels).toEqual({ alertname: 'ChangeEmergency', severity: 'warning', change: String(id) });
    expect(fired.annotations).toMatchObject({
      summary: `change ${id} is applied as an emergency in freeze december release freeze by alice`,
      description: 'checkout is down, restoring port 443',
      hosts: 'web2',
    });
  });

  it('pages AgentSilent when web1’s agent has not been heard from for 3 intervals, and resolves it when it polls', async () => {
    // web1's agent last spoke a week of the server's clock ago (the tests above): silent since.
    const fired = await pageOf('AgentSilent', 'firing');
    expect(fired.labels).toEqual({ alertname: 'AgentSilent', severity: 'warning', host: 'web1' });
    expect(fired.annotations.summary).toBe('the agent of web1 has been silent for more than 3 intervals of 60 s');
    expect(fired.annotations.description).toMatch(/^last heard from at 2026-12-03T/);
    const seen = team.requests.length;
    expect((await h.call('web1', 'GET', '/agent/next')).status).toBe(200);
    await pageOf('AgentSilent', 'resolved', seen);
    const events = await h.store.monitoring.listEvents({ subject: 'vantage:agent:web1' });
    expect(events.map((e) => e.kind)).toEqual(['vantage.silent', 'vantage.back']);
  });
});

/** A self-signed certificate for 127.0.0.1 valid for `days` days, made with openssl. */
function certificate(dir: string, days: number): { key: Buffer; cert: Buffer } {
  const key = join(dir, `key-${days}.pem`);
  const cert = join(dir, `cert-${days}.pem`);
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    String(days),
    '-subj',
    '/CN=shop.example',
    '-addext',
    'subjectAltName=DNS:shop.example,IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!hasOpenssl)('a TLS certificate near its end, through the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let dir: string;
  let tlsServer: https.Server;

  beforeAll(async () => {
    team = await httpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'rampart-alert-tls-'));
    tlsServer = https.createServer(certificate(dir, 5), (_req, res) => res.end('ok'));
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    const port = (tlsServer.address() as AddressInfo).port;
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `site: shop
hosts:
  - {name: web1, addresses: [127.0.0.1]}
monitors:
  - name: shop-cert
    tls: {host: 127.0.0.1, port: ${port}, servername: shop.example, days: 1}
    interval: 1s
    timeout: 500ms
alerting:
  receivers:
    - name: team
      webhook_configs: [{url: '${team.url}/hook'}]
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
`,
    );
    h = await startHarness('sqlite', { config });
  });
  afterAll(async () => {
    await h?.close();
    await team?.close();
    if (tlsServer?.listening) {
      tlsServer.closeAllConnections();
      await new Promise((r) => tlsServer.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages TlsCertificateExpiring (warning) with 5 days left, and resolves it when the certificate is renewed', async () => {
    const find = (status: string, after = 0) =>
      until(`TlsCertificateExpiring ${status}`, () => {
        for (const q of team.requests.slice(after)) {
          const p = JSON.parse(q.body) as Page;
          const a = p.alerts.find((x) => x.labels.alertname === 'TlsCertificateExpiring' && x.state === status);
          if (a) return a;
        }
        return undefined;
      });
    const fired = await find('firing');
    expect(fired.labels).toEqual({ alertname: 'TlsCertificateExpiring', severity: 'warning', monitor: 'shop-cert' });
    expect(fired.annotations.summary).toMatch(/^the TLS certificate of shop-cert expires in [45] days \(20\d\d-/);
    expect(fired.annotations.description).toBe('subject shop.example, issuer shop.example');
    // Renewed for 90 days: the next result says so.
    const seen = team.requests.length;
    tlsServer.setSecureContext(certificate(dir, 90));
    tlsServer.closeAllConnections();
    await find('resolved', seen);
    const events = await h.store.monitoring.listEvents({ subject: 'monitor:shop-cert' });
    expect(events.filter((e) => e.kind.startsWith('tls.')).map((e) => e.kind)).toEqual(['tls.expiring', 'tls.renewed']);
  });
});

function listen(host: string, port: number): Promise<http.Server> {
  const s = http.createServer((_req, res) => res.end('ok\n'));
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

describe('a redundancy group below its declared size, through the server', () => {
  let h: Harness;
  let team: HttpReceiver;
  let dir: string;
  let port = 0;
  const servers: Record<string, http.Server> = {};
  const stop = (s: http.Server | undefined) =>
    new Promise<void>((r) => {
      if (!s?.listening) return r();
      s.closeAllConnections();
      s.close(() => r());
    });

  beforeAll(async () => {
    team = await httpReceiver();
    servers.web1 = await listen('127.0.0.1', 0);
    port = (servers.web1.address() as AddressInfo).port;
    servers.web2 = await listen('127.0.0.2', port);
    servers.lb = await listen('127.0.0.3', port);
    dir = mkdtempSync(join(tmpdir(), 'rampart-alert-redundancy-'));
    const config = join(dir, 'rampart.yaml');
    writeFileSync(
      config,
      `site: loop
hosts:
  - {name: web1, addresses: [127.0.0.1], group: web}
  - {name: web2, addresses: [127.0.0.2], group: web}
services:
  - name: shop
    group: web
    public: [tcp/${port}]
    address: [127.0.0.3]
    health:
      - http: {port: ${port}, path: /healthz}
    monitor: {interval: 1s, timeout: 500ms, failures: 2}
alerting:
  receivers:
    - name: team
      webhook_configs: [{url: '${team.url}/hook'}]
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
`,
    );
    h = await startHarness('sqlite', { config });
  });
  afterAll(async () => {
    await h?.close();
    await team?.close();
    for (const s of Object.values(servers)) await stop(s);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages RedundancyDegraded when one of two backends stops, and resolves it when it is back', async () => {
    const find = (status: string, after = 0) =>
      until(`RedundancyDegraded ${status}`, () => {
        for (const q of team.requests.slice(after)) {
          const p = JSON.parse(q.body) as Page;
          const a = p.alerts.find((x) => x.labels.alertname === 'RedundancyDegraded' && x.state === status);
          if (a) return a;
        }
        return undefined;
      });
    await until('shop UP', async () => {
      const s = (await h.call('vic', 'GET', '/monitors')).body.services?.find(
        (x: { name: string }) => x.name === 'shop',
      );
      return s?.state === 'UP' ? s : undefined;
    });
    await stop(servers.web2);
    const fired = await find('firing');
    expect(fired.labels).toEqual({ alertname: 'RedundancyDegraded', severity: 'warning', service: 'shop' });
    expect(fired.annotations.summary).toBe('shop runs with 1 of 2 backends');
    expect(fired.annotations.description).toMatch(/web2 down/);
    // Nothing says the whole service is down: one backend still answers.
    expect(team.requests.some((q) => q.body.includes('"ServiceDown"'))).toBe(false);
    const seen = team.requests.length;
    servers.web2 = await listen('127.0.0.2', port);
    await find('resolved', seen);
  });
});
