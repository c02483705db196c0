/** The probers against real servers on loopback: HTTP, HTTPS, TCP, TLS certificates and a small DNS server. */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probe } from './probers.js';
import type { Check } from './types.js';

const o = (timeoutMs = 2000) => ({ monitor: 'm', vantage: 'test', timeoutMs });
const httpCheck = (url: string, over: Partial<Extract<Check, { kind: 'http' }>> = {}): Check => ({
  kind: 'http',
  url,
  method: 'GET',
  headers: {},
  expect: [200],
  tlsVerify: true,
  followRedirects: false,
  ...over,
});

let server: http.Server;
let base = '';
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/ok') res.end('all good');
    else if (req.url === '/down') {
      res.statusCode = 503;
      res.end('maintenance');
    } else if (req.url === '/moved') {
      res.statusCode = 302;
      res.setHeader('location', '/ok');
      res.end();
    } else if (req.url === '/slow') setTimeout(() => res.end('late'), 300);
    else if (req.url === '/hang') {
      /* never answers */
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('http probe', () => {
  it('succeeds on the expected status and body, with the phases timed and the source address', async () => {
    const r = await probe(httpCheck(`${base}/ok`, { body: 'good' }), o());
    expect(r).toMatchObject({ ok: true, monitor: 'm', vantage: 'test', detail: { status: 200, source: '127.0.0.1' } });
    expect(r.timings.connectMs).toBeGreaterThanOrEqual(0);
    expect(r.timings.firstByteMs).toBeGreaterThanOrEqual(r.timings.connectMs ?? 0);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.firstByteMs ?? 0);
  });

  it('fails on another status, a missing body, a slow answer or a refused connection, saying why', async () => {
    expect((await probe(httpCheck(`${base}/down`), o())).error).toBe('status 503, expected 200');
    expect((await probe(httpCheck(`${base}/ok`, { body: 'shop' }), o())).error).toBe(
      "the body does not contain 'shop'",
    );
    expect((await probe(httpCheck(`${base}/slow`, { maxLatencyMs: 100 }), o())).error).toMatch(
      /^answered in \d+ ms, more than 100 ms$/,
    );
    const closed = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => r(p));
      });
    });
    expect((await probe(httpCheck(`http://127.0.0.1:${closed}/`), o())).error).toBe('connect ECONNREFUSED');
  });

  it('gives up at the timeout', async () => {
    const r = await probe(httpCheck(`${base}/hang`), o(200));
    expect(r).toMatchObject({ ok: false, error: 'timeout after 200 ms' });
  });

  it('follows redirects only when asked', async () => {
    expect((await probe(httpCheck(`${base}/moved`), o())).error).toBe('status 302, expected 200');
    expect((await probe(httpCheck(`${base}/moved`, { followRedirects: true }), o())).ok).toBe(true);
  });

  it('probes another address than the URL names (an agent on loopback), keeping the Host', async () => {
    const port = (server.address() as AddressInfo).port;
    const r = await probe(httpCheck(`http://192.0.2.11:${port}/ok`), { ...o(), address: '127.0.0.1', inside: true });
    expect(r).toMatchObject({ ok: true, inside: true });
  });
});

describe('tcp probe', () => {
  it('connects, or says why not', async () => {
    const port = (server.address() as AddressInfo).port;
    expect(await probe({ kind: 'tcp', host: '127.0.0.1', port }, o())).toMatchObject({ ok: true });
    const r = await probe({ kind: 'tcp', host: '127.0.0.1', port: 1 }, o());
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/ECONNREFUSED/);
  });
});

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!hasOpenssl)('tls and https probes (a certificate made with openssl)', () => {
  let dir = '';
  let tlsServer: https.Server;
  let port = 0;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-tls-'));
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '5',
      '-subj',
      '/CN=shop.example',
      '-addext',
      'subjectAltName=DNS:shop.example,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    expect(made.status).toBe(0);
    tlsServer = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => res.end('tls ok'),
    );
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    port = (tlsServer.address() as AddressInfo).port;
  });
  afterAll(async () => {
    tlsServer?.closeAllConnections();
    await new Promise((r) => tlsServer?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports days to expiry and fails below the minimum', async () => {
    const tlsCheck = (minDays: number): Check => ({
      kind: 'tls',
      host: '127.0.0.1',
      port,
      servername: 'shop.example',
      minDays,
    });
    const near = await probe(tlsCheck(14), o());
    expect(near.ok).toBe(false);
    expect(near.error).toMatch(/^certificate chain: /); // self-signed: the chain is judged first
    expect(near.detail).toMatchObject({ subject: 'shop.example' });
    expect((near.detail as { days: number }).days).toBeGreaterThanOrEqual(3);
  });

  it('fails https with verification on a self-signed certificate, succeeds without', async () => {
    const url = `https://127.0.0.1:${port}/`;
    expect((await probe(httpCheck(url), o())).error).toMatch(/SELF_SIGNED|self-signed|self signed/i);
    const r = await probe(httpCheck(url, { tlsVerify: false }), o());
    expect(r.ok).toBe(true);
    expect(r.timings.tlsMs).toBeGreaterThanOrEqual(r.timings.connectMs ?? 0);
  });
});

/** A DNS server that answers A queries for shop.example with 192.0.2.10, and NXDOMAIN otherwise. */
function dnsServer(): Promise<{ socket: dgram.Socket; port: number }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (q, rinfo) => {
    let i = 12;
    const labels: string[] = [];
    while (q[i] !== 0 && i < q.length) {
      const len = q[i] as number;
      labels.push(q.subarray(i + 1, i + 1 + len).toString());
      i += len + 1;
    }
    const question = q.subarray(12, i + 5);
    const name = labels.join('.');
    const found = name === 'shop.example';
    const header = Buffer.from([q[0] ?? 0, q[1] ?? 0, 0x81, found ? 0x80 : 0x83, 0, 1, 0, found ? 1 : 0, 0, 0, 0, 0]);
    const answer = found ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10]) : Buffer.alloc(0);
    socket.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  return new Promise((r) => socket.bind(0, '127.0.0.1', () => r({ socket, port: socket.address().port })));
}

describe('dns probe', () => {
  it('checks the expected answers against a given resolver', async () => {
    const d = await dnsServer();
    try {
      // The resolver is an address; Node's Resolver takes ADDRESS:PORT too, which a test server needs.
      const resolver = `127.0.0.1:${d.port}`;
      const ok = await probe({ kind: 'dns', name: 'shop.example', type: 'A', expect: ['192.0.2.10'], resolver }, o());
      expect(ok).toMatchObject({ ok: true, detail: { answers: ['192.0.2.10'] } });
      const wrong = await probe(
        { kind: 'dns', name: 'shop.example', type: 'A', expect: ['192.0.2.99'], resolver },
        o(),
      );
      expect(wrong.error).toBe('missing 192.0.2.99 (answers: 192.0.2.10)');
      const none = await probe({ kind: 'dns', name: 'nope.example', type: 'A', expect: [], resolver }, o());
      expect(none.ok).toBe(false);
      expect(none.error).toMatch(/ENOTFOUND|NXDOMAIN/);
    } finally {
      d.socket.close();
    }
  });
});
