#!/usr/bin/env node
/**
 * The README's screenshot of `npm start` (issue 17 §4): starts the demo (`rampart demo`, the real server on the
 * embedded example) on a free loopback port, signs in with the admin token it prints in Debian's chromium driven
 * by playwright-core (no browser download), waits for the overview to show the shop's backends UP and the blocked
 * change, saves docs/dashboard/demo-overview.png (and demo-change.png, demo-incident.png, demo-hosts.png,
 * demo-traffic.png), and stops the demo with SIGINT (it removes its directory).
 *
 *   npm run build && node scripts/demo-screenshot.mjs        # RAMPART_CHROMIUM=/path/to/chromium to override
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.RAMPART_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(root, 'docs', 'dashboard', 'demo-overview.png');

function startDemo() {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'demo', '--listen', '127.0.0.1:0'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the demo did not start in 150 s:\n${out}`)), 150_000);
    const take = (d) => {
      out += d;
      const url = /dashboard\s+(http:\/\/\S+?)\/?\s/.exec(out)?.[1];
      const token = /sign in\s+(rpt_\S+)/.exec(out)?.[1];
      if (url && token && /Stop it with Ctrl-C/.test(out)) {
        clearTimeout(timer);
        resolve({ proc, url, token, out: () => out });
      }
    };
    proc.stdout.on('data', take);
    proc.stderr.on('data', take);
    proc.once('exit', (code) => reject(new Error(`the demo exited ${code}:\n${out}`)));
  });
}

const demo = await startDemo();
const profile = mkdtempSync(join(tmpdir(), 'rampart-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    colorScheme: 'light',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // The server probes the shop every 10 s: signed in once both backends answered, the overview shows them UP.
  for (let i = 0; ; i++) {
    const res = await fetch(`${demo.url}/api/v1/monitors`, { headers: { authorization: `Bearer ${demo.token}` } });
    const body = await res.json();
    if (body.counts?.UP === 2) break;
    if (i > 120) throw new Error(`the shop's monitors are not UP after 60 s: ${JSON.stringify(body.counts)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // The hosts' agents report within a few seconds: the overview then lists no host as drifted or silent.
  for (let i = 0; ; i++) {
    const res = await fetch(`${demo.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${demo.token}` } });
    const body = await res.json();
    if (body.hosts?.every((h) => h.drift?.inSync)) break;
    if (i > 120) throw new Error(`the demo's hosts are not reported in sync after 60 s: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${demo.url}/`);
  await page.getByLabel('API token').fill(demo.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  try {
    await page.getByRole('cell', { name: 'UP' }).first().waitFor({ timeout: 60_000 });
    await page
      .getByRole('link', { name: /^Change \d+$/ })
      .first()
      .waitFor();
  } catch (e) {
    const failed = join(tmpdir(), 'rampart-demo-screenshot-failed.png');
    await page.screenshot({ path: failed, fullPage: true });
    throw new Error(`${e.message}\n(the page as it was: ${failed})`);
  }
  mkdirSync(dirname(OUT), { recursive: true });
  await page.screenshot({ path: OUT, fullPage: true });
  process.stdout.write(`wrote ${OUT}\n`);
  // The blocked change and the replayed incident, for docs/dashboard/.
  await page
    .getByRole('link', { name: /^Change \d+$/ })
    .first()
    .click();
  await page.locator('pre.plan').waitFor();
  await page.screenshot({ path: join(dirname(OUT), 'demo-change.png'), fullPage: true });
  await page.goto(`${demo.url}/#/incidents/1`);
  await page.locator('#timeline-h').waitFor();
  await page.locator('article.postmortem').waitFor();
  await page.waitForFunction(() => !(document.body.textContent ?? '').includes('Loading'));
  await page.screenshot({ path: join(dirname(OUT), 'demo-incident.png'), fullPage: true });
  // The hosts as their agents report them (in sync), and the shop's traffic against the band its history gives.
  await page.goto(`${demo.url}/#/hosts`);
  await page.getByRole('rowheader', { name: /web2/ }).waitFor();
  await page.getByText('in sync').nth(1).waitFor();
  await page.screenshot({ path: join(dirname(OUT), 'demo-hosts.png'), fullPage: true });
  await page.goto(`${demo.url}/#/traffic`);
  await page.locator('.chart canvas').first().waitFor();
  await page.waitForFunction(() => !(document.body.textContent ?? '').includes('Loading'));
  await page.screenshot({ path: join(dirname(OUT), 'demo-traffic.png'), fullPage: true });
  process.stdout.write(`wrote demo-change.png, demo-incident.png, demo-hosts.png and demo-traffic.png beside it\n`);
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  const exited = new Promise((r) => demo.proc.once('exit', r));
  demo.proc.kill('SIGINT');
  const code = await exited;
  if (code !== 0) {
    process.stderr.write(`the demo exited ${code}:\n${demo.out()}\n`);
    process.exitCode = 1;
  }
}
