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
  // Charts (uPlot) are a chunk of their own, loaded only by the pages that draw them: the overview's first load
  // stays small (bench/web-bench.mjs measures it).
  splitting: true,
  target: ['es2020'],
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const entry = (ext) =>
  Object.entries(result.metafile.outputs)
    .filter(([p, o]) => o.entryPoint !== undefined && p.endsWith(ext))
    .map(([p]) => basename(p))[0];
const script = entry('.js');
const style = entry('.css');
if (!script || !style) throw new Error(`build-web: esbuild wrote ${outputs.join(', ')}; expected a .js and a .css`);
const index = readFileSync(join(root, 'web', 'index.html'), 'utf8')
  .replace('/web/SCRIPT', `/web/${script}`)
  .replace('/web/STYLE', `/web/${style}`);
writeFileSync(join(out, 'index.html'), index);
const size = (f) => result.metafile.outputs[Object.keys(result.metafile.outputs).find((p) => p.endsWith(f))].bytes;
// What the first load fetches: the entry and the chunks it imports statically (transitively); the rest is on demand.
const outOf = (f) => Object.entries(result.metafile.outputs).find(([p]) => basename(p) === f)?.[1];
const firstLoad = new Set([script]);
for (const f of firstLoad) {
  for (const i of outOf(f)?.imports ?? []) if (i.kind === 'import-statement') firstLoad.add(basename(i.path));
}
const onDemand = outputs.filter((f) => f.endsWith('.js') && !firstLoad.has(f));
writeFileSync(
  join(out, 'bundle.json'),
  `${JSON.stringify({ script, style, firstLoad: [...firstLoad], onDemand }, null, 2)}\n`,
);
const kb = (fs) => fs.reduce((n, f) => n + size(f), 0);
console.log(
  `build-web: dist/web/${script} and ${style}; first load ${kb([...firstLoad])} bytes of script (${[...firstLoad].join(', ')}), ${size(style)} bytes of style; on demand ${kb(onDemand)} bytes (${onDemand.join(', ')})`,
);
