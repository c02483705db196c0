/**
 * Serving the dashboard (src/server/web.ts) from a real server: the page and its files with a strict CSP and ETags
 * (304 on revalidation), nothing outside the bundle, and a clear 503 page when the bundle was not built.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app.js';
import { configHolder } from '../../src/server/config-holder.js';
import { CSP } from '../../src/server/web.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { SHOP_CONFIG } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-web-serve-'));
const web = join(dir, 'web');
let store: Store;
const apps: FastifyInstance[] = [];

async function start(webRoot: string): Promise<string> {
  const app = await buildServer({ store, config: configHolder(SHOP_CONFIG), webRoot });
  apps.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

beforeAll(async () => {
  mkdirSync(web, { recursive: true });
  writeFileSync(
    join(web, 'index.html'),
    '<!doctype html><title>Rampart</title><script type="module" src="/web/app-ABCDEFGH.js"></script>',
  );
  writeFileSync(join(web, 'app-ABCDEFGH.js'), 'console.log("rampart")');
  writeFileSync(join(dir, 'secret.txt'), 'not for the web');
  store = await openStore({ dataDir: join(dir, 'data') });
});
afterAll(async () => {
  for (const a of apps) await a.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serving the dashboard', () => {
  it('serves the page and its script with a strict CSP, and answers 304 to a matching ETag', async () => {
    const url = await start(web);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CSP);
    expect(CSP).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'/);
    expect(CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const etag = page.headers.get('etag') as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    const again = await fetch(`${url}/`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const script = await fetch(`${url}/web/app-ABCDEFGH.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await script.text()).toBe('console.log("rampart")');
  });

  it('serves nothing outside the bundle', async () => {
    const url = await start(web);
    for (const path of ['/web/../secret.txt', '/web/%2e%2e/secret.txt', '/web/%2e%2e%2fsecret.txt', '/web/nope.js']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(await res.text(), path).not.toContain('not for the web');
    }
  });

  it('says clearly that the bundle was not built, and keeps the API working', async () => {
    const url = await start(join(dir, 'missing'));
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/The dashboard was not built.*npm run build/s);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});
