/**
 * The live stream's publishing (src/server/stream.ts): the hub coalesces each topic (the first at once, a burst once
 * at the end of its window, never lost), on simulated time; and a real server tells an open stream of a monitor's
 * first good result, which is no event (UNKNOWN -> UP is not news) but changes what the overview shows, and of a
 * plan that finished after its request answered.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hub, type StreamEvent } from '../../src/server/stream.js';
import { type Harness, startHarness } from './harness.js';

/** Simulated time: `later` queues, `advance` runs what fell due. */
function clock() {
  let now = 1_000_000;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    later: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return () => {
        t.live = false;
      };
    },
    advance(ms: number) {
      now += ms;
      const due = timers.filter((t) => t.at <= now);
      timers = timers.filter((t) => t.at > now);
      for (const t of due) if (t.live) t.fn();
    },
    get pending() {
      return timers.filter((t) => t.live).length;
    },
  };
}

describe('the hub', () => {
  it('sends a topic at once, then at most once per window, the end of a burst never lost', () => {
    const c = clock();
    const hub = new Hub({ windowMs: 250, now: c.now, later: c.later });
    const got: string[] = [];
    hub.subscribe(
      (e: StreamEvent) => got.push(e.topic),
      () => {},
    );
    hub.publish({ topic: 'monitors' });
    expect(got).toEqual(['monitors']);
    // 10,000 monitors starting: one more, at the end of the window
    for (let i = 0; i < 10_000; i++) hub.publish({ topic: 'monitors' });
    hub.publish({ topic: 'changes' });
    expect(got).toEqual(['monitors', 'changes']);
    c.advance(249);
    expect(got).toEqual(['monitors', 'changes']);
    c.advance(1);
    expect(got).toEqual(['monitors', 'changes', 'monitors']);
    expect(c.pending).toBe(0);
    // quiet for a window: the next one goes at once again
    c.advance(250);
    hub.publish({ topic: 'monitors' });
    expect(got).toEqual(['monitors', 'changes', 'monitors', 'monitors']);
  });

  it('ends a session at once and cancels what is pending when it closes', () => {
    const c = clock();
    const hub = new Hub({ windowMs: 250, now: c.now, later: c.later });
    const got: string[] = [];
    let closed = 0;
    hub.subscribe(
      (e) => got.push(e.topic === 'session.end' ? `end ${e.session}` : e.topic),
      () => closed++,
    );
    hub.publish({ topic: 'hosts' });
    hub.publish({ topic: 'hosts' });
    hub.publish({ topic: 'session.end', session: 's1' });
    hub.publish({ topic: 'session.end', session: 's2' });
    expect(got).toEqual(['hosts', 'end s1', 'end s2']);
    hub.closeAll();
    expect(closed).toBe(1);
    c.advance(1000);
    expect(got).toEqual(['hosts', 'end s1', 'end s2']);
  });
});

describe('a real server’s stream', () => {
  let h: Harness;
  let dir: string;
  let server: http.Server;
  let healthy = false;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain', connection: 'close' });
      res.end(healthy ? 'ok\n' : 'not yet\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'rampart-stream-'));
    const config = join(dir, 'rampart.yaml');
    // 100 failures in a row before DOWN: the failing results before it turns healthy leave it UNKNOWN, quietly
    writeFileSync(
      config,
      `site: loop
hosts:
  - {name: web1, addresses: [127.0.0.1]}
monitors:
  - {name: late, http: {url: "http://127.0.0.1:${port}/"}, interval: 1s, timeout: 500ms, failures: 100, from: [server]}
`,
    );
    // plans on worker threads and never waited for: every proposal answers 202 and is planned afterwards
    h = await startHarness('sqlite', { config, worker: true, planWaitMs: 0 });
  });
  afterAll(async () => {
    await h?.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** An SSE stream as vic, and a wait (at most 30 s) for what it received to hold. */
  function stream() {
    let text = '';
    const waiters: (() => void)[] = [];
    const req = request(`${h.url}/api/v1/stream`, { headers: { authorization: `Bearer ${h.tokens.vic}` } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        for (const w of waiters.splice(0)) w();
      });
    });
    req.end();
    const until = async (ok: (text: string) => boolean, what: string) => {
      const end = Date.now() + 30_000;
      const give = setInterval(() => {
        for (const w of waiters.splice(0)) w();
      }, 1000);
      try {
        while (!ok(text)) {
          if (Date.now() > end) throw new Error(`${what} did not come: ${JSON.stringify(text)}`);
          await new Promise<void>((r) => waiters.push(r));
        }
      } finally {
        clearInterval(give);
      }
    };
    return { until, close: () => req.destroy() };
  }

  it('names changes again when a plan finishes after its request answered', async () => {
    const s = stream();
    try {
      await s.until((t) => t.includes(': ready\n\n'), 'the stream');
      const proposed = await h.call('alice', 'POST', '/changes', {
        target: { host: 'web1' },
        reason: 'open the input chain of web1',
        format: 'nft-text',
        ruleset:
          'table inet filter {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n',
      });
      expect(proposed.status, JSON.stringify(proposed.body)).toBe(202);
      const id = proposed.body.change.id as number;
      await h.until(id, (v) => v.change.state === 'planned');
      // once for the proposal's answer, once more when its plan was stored (a burst's last is never lost)
      await s.until((t) => t.split('event: changes\n').length - 1 >= 2, 'a second event: changes');
    } finally {
      s.close();
    }
  });

  it('names monitors when UNKNOWN turns UP, with no event written for it', async () => {
    // its first (failing) result is in: UNKNOWN, with the server's vantage point heard from
    for (let i = 0; ; i++) {
      const m = (await h.call('vic', 'GET', '/monitors/late')).body;
      if (m.vantages?.server) {
        expect(m.state).toBe('UNKNOWN');
        break;
      }
      if (i > 100) throw new Error(`no result for monitor late: ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const s = stream();
    try {
      await s.until((t) => t.includes(': ready\n\n'), 'the stream');
      healthy = true;
      await s.until((t) => t.includes('event: monitors\n'), 'event: monitors');
      const m = (await h.call('vic', 'GET', '/monitors/late')).body;
      expect(m.state).toBe('UP');
      // no monitor event says so: the stream heard it from what the monitor shows
      expect(m.events).toEqual([]);
    } finally {
      s.close();
    }
  });
});
