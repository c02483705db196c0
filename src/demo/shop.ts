/**
 * The demo shop: the founding postmortem's web shop as two small HTTP backends on loopback (web1 on 127.0.0.1,
 * web2 on 127.0.0.2, the same ephemeral port), which the server's monitors probe. No root, nothing outside the
 * machine: 127.0.0.0/8 is all loopback on Linux.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEMO_HOSTS, type DemoHost } from './site.js';

export interface DemoShop {
  readonly port: number;
  /** Backend name → `http://ADDRESS:PORT`. */
  readonly urls: Readonly<Record<DemoHost, string>>;
  close(): Promise<void>;
}

function backend(host: DemoHost): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`ok ${host}\n`);
      return;
    }
    if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        `<!doctype html><html lang="en"><title>Online store</title><h1>Online store</h1><p>Served by ${host}.</p></html>\n`,
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  });
}

function listen(server: http.Server, address: string, port: number): Promise<number> {
  return new Promise((done, fail) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      fail(e);
    };
    const onListening = () => {
      server.off('error', onError);
      done((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, address);
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((done) => {
    if (!server.listening) return done();
    server.close(() => done());
    server.closeAllConnections();
  });
}

/** Starts both backends on one free port (tried again on another port if web2's address has it taken). */
export async function startShop(): Promise<DemoShop> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const web1 = backend('web1');
    const web2 = backend('web2');
    const port = await listen(web1, DEMO_HOSTS.web1, 0);
    try {
      await listen(web2, DEMO_HOSTS.web2, port);
    } catch (e) {
      lastError = e;
      await close(web1);
      continue;
    }
    return {
      port,
      urls: { web1: `http://${DEMO_HOSTS.web1}:${port}`, web2: `http://${DEMO_HOSTS.web2}:${port}` },
      close: async () => {
        await Promise.all([close(web1), close(web2)]);
      },
    };
  }
  throw new Error(
    `the demo shop found no port free on both ${DEMO_HOSTS.web1} and ${DEMO_HOSTS.web2}: ${String(lastError)}`,
  );
}
