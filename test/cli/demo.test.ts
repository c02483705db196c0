/**
 * `npm start` (`rampart demo`, issue 17 §4) as a user runs it: the trace, then the real `rampart serve` on the
 * embedded example. Started on a free port, its URL answers, the printed admin token signs in, the change that
 * repeats the founding outage waits blocked at plan, the replayed incident has its timeline and postmortem; then
 * SIGINT, and the demo exits 0 having removed its temporary directory (and stopped the server it started).
 * `--no-serve` keeps the trace alone, for scripts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, main, rampartAsync, root } from './cli.js';

interface Started {
  proc: ChildProcess;
  out: () => string;
  url: string;
  token: string;
  dir: string;
}

function startDemo(): Promise<Started> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [main, 'demo', '--listen', '127.0.0.1:0'], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the demo did not start:\n${out}`)), 150_000);
    const take = (d: Buffer) => {
      out += d;
      const url = /dashboard\s+(http:\/\/\S+?)\/?\s/.exec(out)?.[1];
      const token = /sign in\s+(rpt_\S+)/.exec(out)?.[1];
      const dir = /SQLite in (\S+?)\):/.exec(out)?.[1];
      if (url && token && dir && /Stop it with Ctrl-C/.test(out)) {
        clearTimeout(timer);
        resolve({ proc, out: () => out, url, token, dir });
      }
    };
    proc.stdout.on('data', take);
    proc.stderr.on('data', take);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited ${code} before it served:\n${out}`));
    });
  });
}

describe('rampart demo (npm start)', () => {
  let demo: Started | undefined;
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${demo?.url}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${demo?.token}`, ...(init.headers ?? {}) },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    ensureBuilt();
    demo = await startDemo();
  });

  afterAll(async () => {
    // A test that failed halfway: the demo is stopped all the same (it stops its server and removes its directory).
    if (demo && demo.proc.exitCode === null && demo.proc.signalCode === null) {
      const exited = new Promise((r) => demo?.proc.once('exit', r));
      demo.proc.kill('SIGTERM');
      await exited;
    }
  });

  it('prints the trace first, then the URL and a token; the dashboard answers and the token signs in', async () => {
    const out = demo?.out() ?? '';
    expect(out.indexOf('customer -> shop https   DROP')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('customer -> shop https   DROP')).toBeLessThan(out.indexOf('dashboard'));
    const page = await fetch(`${demo?.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const who = await api('/whoami');
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ name: 'admin', role: 'admin' });
    const session = await fetch(`${demo?.url}/api/v1/session`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo?.token}` },
    });
    expect(session.status, await session.clone().text()).toBeLessThan(300);
    expect(session.headers.get('set-cookie')).toMatch(/HttpOnly/i);
  });

  it('has the change that repeats the founding outage, blocked at plan and waiting', async () => {
    const list = await api('/changes?limit=10');
    const changes = list.body.changes as { id: number; state: string; author: string }[];
    expect(changes).toHaveLength(1);
    const c = changes[0] as { id: number; state: string; author: string };
    expect(c).toMatchObject({ state: 'planned', author: 'alice' });
    const view = await api(`/changes/${c.id}`);
    const plan = view.body.plan as { blocked: boolean; plan: { blockers: { kind: string; host: string }[] } };
    expect(plan.blocked).toBe(true);
    expect(plan.plan.blockers.map((b) => b.host).sort()).toEqual(expect.arrayContaining(['web1', 'web2']));
  });

  it('has the founding incident replayed, with its timeline and postmortem', async () => {
    const list = await api('/incidents?limit=10');
    const incidents = list.body.incidents as { id: number; status: string; services: string[] }[];
    expect(incidents).toHaveLength(1);
    const inc = incidents[0] as { id: number; status: string; services: string[] };
    expect(inc).toMatchObject({ status: 'resolved', services: ['shop'] });
    const detail = await api(`/incidents/${inc.id}`);
    const timeline = detail.body.timeline as { kind: string; text: string }[];
    const kinds = new Set(timeline.map((e) => e.kind));
    for (const k of ['incident.declared', 'incident.ack', 'incident.status', 'incident.note', 'incident.resolved'])
      expect(kinds, k).toContain(k);
    expect(timeline.some((e) => /no incoming traffic/.test(e.text))).toBe(true);
    const pm = await api(`/incidents/${inc.id}/postmortem`);
    expect(pm.body.versions).toBe(2);
    expect(String(pm.body.markdown)).toContain('## Timeline');
    expect(String(pm.body.markdown)).toContain('change management');
    // the server probes the shop it started: both backends come up
    const monitors = await api('/monitors?limit=10');
    const names = (monitors.body.monitors as { name: string }[]).map((m) => m.name).sort();
    expect(names).toEqual(['shop@web1', 'shop@web2']);
  });

  it('has its hosts reported by their agents, in sync, and a traffic baseline from its history', async () => {
    // the real agent, its live ruleset read from a file: each host has its desired revision, was seen, is in sync
    type Host = {
      name: string;
      desired: { revision: number } | null;
      agent: unknown;
      drift: { inSync: boolean } | null;
    };
    let hosts: Host[] = [];
    for (let i = 0; ; i++) {
      hosts = (await api('/hosts')).body.hosts as Host[];
      if (hosts.every((h) => h.agent && h.drift)) break;
      if (i > 150) throw new Error(`the demo's agents did not report in 30 s: ${JSON.stringify(hosts)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const h of hosts) {
      expect(h.desired?.revision, h.name).toBe(1);
      expect(h.agent, h.name).toMatchObject({ lastReport: expect.any(String), state: 'idle' });
      expect(h.drift, h.name).toMatchObject({ inSync: true });
    }
    // the waiting change says it is blocked, and why, in the list the overview reads
    const waiting = (await api('/changes?state=planned&limit=20')).body.changes as { plan?: unknown }[];
    expect(waiting[0]?.plan).toMatchObject({ blocked: true, blocker: expect.stringMatching(/shop/) });
    // 30 days of history give the detectors a band at the server's start (no sample arrived since)
    const traffic = (await api('/traffic/shop?resolution=1m&since=21600')).body as {
      now: { host?: string; expected: number | null }[];
      points: { expected: number | null; lower: number | null }[];
    };
    expect(traffic.points.filter((p) => p.expected !== null && p.lower !== null).length).toBeGreaterThan(300);
    expect(traffic.now.find((n) => n.host === undefined)?.expected).toBeGreaterThan(0);
  });

  it('stops on SIGINT: exit 0, its directory removed, its server gone', async () => {
    const d = demo as Started;
    expect(existsSync(d.dir)).toBe(true);
    const exited = new Promise<number | null>((r) => d.proc.once('exit', (code) => r(code)));
    d.proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(d.dir)).toBe(false);
    await expect(fetch(`${d.url}/healthz`)).rejects.toThrow();
  });

  it('keeps the trace alone with --no-serve', async () => {
    const r = await rampartAsync({}, 'demo', '--no-serve');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('customer -> shop https   DROP');
    expect(r.stdout).not.toContain('dashboard');
  });
});
