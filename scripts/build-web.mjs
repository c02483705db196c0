#!/usr/bin/env node
// Bundles the dashboard (web/) into dist/web with esbuild: one script and one stylesheet named by their content hash
// (served immutable), and index.html pointing at them. Part of `npm run build`; nothing is fetched at run time.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.ts'), style: join(root, 'web', 'src', 'style.css') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (!script || !style) throw new Error(`build-web: esbuild wrote ${outputs.join(', ')}; expected a .js and a .css`);
const index = readFileSync(join(root, 'web', 'index.html'), 'utf8')
  .replace('/web/SCRIPT', `/web/${script}`)
  .replace('/web/STYLE', `/web/${style}`);
writeFileSync(join(out, 'index.html'), index);
const size = (f) => result.metafile.outputs[Object.keys(result.metafile.outputs).find((p) => p.endsWith(f))].bytes;
console.log(`build-web: dist/web/${script} ${size(script)} bytes, dist/web/${style} ${size(style)} bytes`);
