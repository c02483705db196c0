/**
 * Dashboard sessions (src/server/session.ts) and the live stream (src/server/stream.ts) against a real server on
 * SQLite: a person's token is exchanged for an HttpOnly cookie that then opens the same routes with the same role
 * checks; a change on a cookie needs the server's own Origin and the session's CSRF header; signing out, expiry and
 * revocation end the session (and its stream); agents cannot sign in; everything is audited.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app.js';
import { configHolder } from '../../src/server/config-holder.js';
import { type Harness, SHOP_CONFIG, startHarness, type User } from './harness.js';

let clock = Date.parse('2026-12-04T09:00:00.000Z');
let h: Harness;
beforeAll(async () => {
  h = await startHarness('sqlite', { now: () => new Date(clock) });
});
afterAll(async () => h?.close());

interface Signed {
  readonly cookie: string;
  readonly csrf: string;
  readonly setCookie: string;
  // biome-ignore lint/suspicious/noExplicitAny: the answer's JSON
  readonly body: any;
}

async function signIn(user: User): Promise<Signed> {
  const res = await fetch(`${h.url}/api/v1/session`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.tokens[user]}` },
  });
  const body = (await res.json()) as Signed['body'];
  expect(res.status, JSON.stringify(body)).toBe(201);
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0] as string, csrf: body.csrf, setCookie, body };
}

/** A request on a session cookie, as the dashboard sends it unless told otherwise. */
async function onCookie(
  s: Signed,
  method: string,
  path: string,
  opts: { body?: unknown; origin?: string | null; csrf?: string | null } = {},
) {
  const headers: Record<string, string> = { cookie: s.cookie };
  const origin = opts.origin === undefined ? h.url : opts.origin;
  if (origin !== null) headers.origin = origin;
  const csrf = opts.csrf === undefined ? s.csrf : opts.csrf;
  if (csrf !== null && method !== 'GET') headers['x-rampart-csrf'] = csrf;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${h.url}/api/v1${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const silence = { matchers: ['service="shop"'], comment: 'maintenance of the shop' };

describe('dashboard sessions', () => {
  it('exchanges a token for an HttpOnly, SameSite=Strict cookie that is not Secure over plain HTTP', async () => {
    const s = await signIn('vic');
    expect(s.setCookie).toMatch(
      /^rampart_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/,
    );
    expect(s.body).toMatchObject({ name: 'vic', role: 'viewer', expiresAt: '2026-12-04T21:00:00.000Z' });
    const who = await onCookie(s, 'GET', '/session');
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ name: 'vic', role: 'viewer', csrf: s.csrf });
    const audit = (await h.store.auditEntries()).filter((e) => e.action === 'session.create');
    expect(audit.at(-1)).toMatchObject({ actor: 'vic', target: expect.stringMatching(/^token:[0-9a-f]{8}$/) });
    // the cookie's value is not what is stored: only its hash
    const stored = JSON.stringify(await h.store.auditEntries());
    expect(stored).not.toContain(s.cookie.split('=')[1]);
  });

  it('opens the same routes as the token, with the same role checks', async () => {
    const vic = await signIn('vic');
    expect((await onCookie(vic, 'GET', '/changes')).status).toBe(200);
    const refused = await onCookie(vic, 'POST', '/silences', { body: silence });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/needs the operator role; this token has viewer/);
    expect((await onCookie(vic, 'GET', '/tokens')).status).toBe(403);
    const alice = await signIn('alice');
    const made = await onCookie(alice, 'POST', '/silences', { body: silence });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await onCookie(alice, 'GET', '/tokens')).status).toBe(403);
    const admin = await signIn('admin');
    expect((await onCookie(admin, 'GET', '/tokens')).status).toBe(200);
  });

  it('refuses a change on a cookie without the CSRF header, with a wrong one, or from another origin', async () => {
    const alice = await signIn('alice');
    const missing = await onCookie(alice, 'POST', '/silences', { body: silence, csrf: null });
    expect(missing.status).toBe(403);
    expect(missing.body.detail).toMatch(/needs the x-rampart-csrf header .* it is missing/);
    const other = await signIn('alice');
    const wrong = await onCookie(alice, 'POST', '/silences', { body: silence, csrf: other.csrf });
    expect(wrong.status).toBe(403);
    expect(wrong.body.detail).toMatch(/it is wrong/);
    const evil = await onCookie(alice, 'POST', '/silences', { body: silence, origin: 'http://evil.test' });
    expect(evil.status).toBe(403);
    expect(evil.body.detail).toMatch(
      /needs the Origin http:\/\/127\.0\.0\.1:\d+; this request's Origin is 'http:\/\/evil\.test'/,
    );
    const noOrigin = await onCookie(alice, 'POST', '/silences', { body: silence, origin: null });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.body.detail).toMatch(/Origin is missing/);
    // nothing was created by the refused requests
    const silences = (await h.call('vic', 'GET', '/silences')).body.silences;
    expect(silences.filter((x: { createdBy: string }) => x.createdBy === 'alice')).toHaveLength(1);
    // reads need neither
    expect((await onCookie(alice, 'GET', '/alerts', { origin: null, csrf: null })).status).toBe(200);
  });

  it('does not sign in agents, probes or Alertmanager, nor a session from a cookie', async () => {
    for (const u of ['web1', 'probe-eu', 'prometheus'] as const) {
      const res = await h.call(u, 'POST', '/session');
      expect(res.status, u).toBe(403);
    }
    const vic = await signIn('vic');
    const again = await onCookie(vic, 'POST', '/session');
    expect(again.status).toBe(401);
    expect((await h.call(undefined, 'POST', '/session')).status).toBe(401);
  });

  it('signs out: the cookie is cleared and refused afterwards, and the sign-out is audited', async () => {
    const bob = await signIn('bob');
    const out = await onCookie(bob, 'DELETE', '/session');
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/^rampart_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    const after = await onCookie(bob, 'GET', '/changes');
    expect(after.status).toBe(401);
    expect(after.body.detail).toMatch(/signed out at .*; sign in again/);
    expect((await h.store.auditEntries()).at(-1)).toMatchObject({ action: 'session.end', actor: 'bob' });
  });

  it('ends sessions at their expiry and with their token', async () => {
    const carol = await signIn('carol');
    const dave = await signIn('dave');
    expect((await onCookie(carol, 'GET', '/changes')).status).toBe(200);
    const revoked = await h.call('admin', 'DELETE', `/tokens/${dave.body.tokenId}`);
    expect(revoked.status).toBe(200);
    const daveAfter = await onCookie(dave, 'GET', '/changes');
    expect(daveAfter.status).toBe(401);
    expect(daveAfter.body.detail).toMatch(/was revoked/);
    clock += 12 * 3_600_000;
    const late = await onCookie(carol, 'GET', '/changes');
    expect(late.status).toBe(401);
    expect(late.body.detail).toMatch(/the session expired at 2026-12-04T21:00:00.000Z/);
    clock -= 12 * 3_600_000;
  });
});

/** Reads an SSE stream until `until` holds for what arrived, or the stream ends. */
function openStream(s: Signed) {
  let text = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const req = request(`${h.url}/api/v1/stream`, { headers: { cookie: s.cookie } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      text += c;
      for (const w of waiters.splice(0)) w();
    });
    res.on('end', () => {
      ended = true;
      for (const w of waiters.splice(0)) w();
    });
  });
  req.end();
  return {
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    async until(ok: () => boolean): Promise<void> {
      while (!ok()) {
        if (ended) throw new Error(`the stream ended before the wait was over: ${text}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    close: () => req.destroy(),
  };
}

describe('the live stream', () => {
  it('says ready first, names what changed, and ends when its session signs out', async () => {
    const vic = await signIn('vic');
    const alice = await signIn('alice');
    const stream = openStream(vic);
    try {
      await stream.until(() => stream.text.includes(': ready\n\n'));
      expect(stream.text.startsWith(': ready\n\n')).toBe(true);
      expect((await onCookie(alice, 'POST', '/silences', { body: silence })).status).toBe(201);
      await stream.until(() => stream.text.includes('event: silences\n'));
      // signing another session out does not end this one
      expect((await onCookie(alice, 'DELETE', '/session')).status).toBe(200);
      expect((await onCookie(vic, 'DELETE', '/session')).status).toBe(200);
      await stream.until(() => stream.ended);
      expect(stream.text).toMatch(/event: session-ended\ndata: \{"reason":"signed out"\}\n\n$/);
    } finally {
      stream.close();
    }
  });

  it('refuses a stream without a session or token', async () => {
    const res = await fetch(`${h.url}/api/v1/stream`);
    expect(res.status).toBe(401);
  });
});

describe('sessions over HTTPS', () => {
  it('marks the cookie Secure when the server serves HTTPS itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-session-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const ssl = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    expect(ssl.status, String(ssl.stderr)).toBe(0);
    const app = await buildServer({
      store: h.store,
      config: configHolder(SHOP_CONFIG),
      https: { cert: readFileSync(cert), key: readFileSync(key) },
      webRoot: false,
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const setCookie = await new Promise<string>((resolve, reject) => {
        const req = https.request(
          `${url}/api/v1/session`,
          { method: 'POST', ca: readFileSync(cert), headers: { authorization: `Bearer ${h.tokens.vic}` } },
          (res) => {
            res.resume();
            expect(res.statusCode).toBe(201);
            resolve(String(res.headers['set-cookie']?.[0] ?? ''));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(setCookie).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
