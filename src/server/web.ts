/**
 * Serves the dashboard (issue 17) that `npm run build` bundles into dist/web (scripts/build-web.mjs): the page at
 * `/` and its files under `/web/`. A strict Content-Security-Policy (self only, no inline script or style), ETags
 * for revalidation, and a clear 503 page when the bundle was not built. The page is a client of the JSON API and
 * the SSE stream; it holds no business rule of its own. Not API routes: they are not in the registry, need no
 * token (the page itself is public; everything it shows comes from authenticated API calls).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** dist/web of this package: from dist/server/web.js (built) or src/server/web.ts (tests run the sources). */
export function defaultWebRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, '..', '..', 'dist', 'web');
}

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
  readonly type: string;
  readonly mtimeMs: number;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rampart: dashboard not built</title></head>
<body><h1>The dashboard was not built</h1>
<p>This server found no web bundle at <code>WHERE</code>. Run <code>npm run build</code> (it bundles <code>web/</code>
into <code>dist/web</code>) and restart <code>rampart serve</code>. The API under <code>/api/v1</code> works without it.</p>
</body></html>
`;

export function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

export function registerWeb(app: FastifyInstance, root: string = defaultWebRoot()): void {
  const base = resolve(root);
  const cache = new Map<string, Asset>();

  /** The file under the web root (never outside it), read once per modification. */
  const load = (rel: string): Asset | undefined => {
    const file = resolve(base, rel);
    if (file !== base && !file.startsWith(base + sep)) return undefined;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === st.mtimeMs) return hit;
    const body = readFileSync(file);
    const asset: Asset = {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      type: TYPES[extname(file)] ?? 'application/octet-stream',
      mtimeMs: st.mtimeMs,
    };
    cache.set(file, asset);
    return asset;
  };

  const send = (req: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string) => {
    securityHeaders(reply).header('etag', asset.etag).header('cache-control', cacheControl);
    if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.header('content-type', asset.type).send(asset.body);
  };

  const notBuilt = (reply: FastifyReply) =>
    securityHeaders(reply)
      .code(503)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(NOT_BUILT.replace('WHERE', join(base, 'index.html')));

  app.get('/', async (req, reply) => {
    const index = load('index.html');
    if (!index) return notBuilt(reply);
    // The page names its script and style by content hash, so it is revalidated each time and they are not.
    return send(req, reply, index, 'no-cache');
  });
  app.get('/web/*', async (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    const asset = rel && !rel.includes('\0') ? load(rel) : undefined;
    if (!asset) {
      if (!existsSync(join(base, 'index.html'))) return notBuilt(reply);
      return securityHeaders(reply)
        .code(404)
        .header('content-type', 'text/plain; charset=utf-8')
        .send(`no file /web/${rel} in the dashboard bundle\n`);
    }
    const hashed = /-[A-Z0-9]{8,}\.(js|css)$/i.test(rel);
    return send(req, reply, asset, hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
  });
}
