/**
 * `rampart lab up` / `rampart lab down`: the shop lab on the user's own machine, left running between the two.
 *
 * `lab up` builds the namespaces, starts the shop apps and HAProxy, then detaches: the lab outlives the command, and
 * its record (namespace names, PIDs with their start times) goes to a state file. `lab down`, a separate process,
 * kills exactly those PIDs (still the same processes: PID and start time match) and deletes the namespaces.
 * Nothing is ever created or changed in the machine's own network namespace (see src/lab/shop-lab.ts).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { runCommand } from '../../lab/executor.js';
import { BASELINE_RULESET, type RampartLab, SERVER_URL, startRampart } from '../../lab/rampart-lab.js';
import {
  createShopLab,
  destroyRecordedLab,
  distScript,
  readLabRecord,
  SHOP_ADDRESSES,
  SHOP_HOSTS,
  SHOP_SUBNET,
  SHOP_URL,
  type ShopLab,
  type ShopLabRecord,
  shopLabUnavailable,
  startShop,
  sweepStaleShopLabs,
} from '../../lab/shop-lab.js';
import { FOUNDING_OUTAGE_NFT } from '../demo-data.js';
import { printJson, run } from '../output.js';

/** $RAMPART_LAB_STATE, else lab.json in $RAMPART_DATA_DIR, else /run/rampart-lab.json (root's tmpfs). */
export function defaultLabStateFile(): string {
  if (process.env.RAMPART_LAB_STATE) return process.env.RAMPART_LAB_STATE;
  if (process.env.RAMPART_DATA_DIR) return join(process.env.RAMPART_DATA_DIR, 'lab.json');
  return '/run/rampart-lab.json';
}

interface LabCliOptions {
  readonly state?: string;
  readonly json?: boolean;
}

function refuseUnlessAble(verb: string, tools: readonly string[]): void {
  const why = shopLabUnavailable(tools);
  if (why) {
    throw new UserError(
      'RAMPART_ERR_USAGE',
      `rampart lab ${verb}: cannot run here: ${why}; the lab needs Linux, root, iproute2 (ip) and HAProxy ` +
        '(Debian: apt-get install iproute2 haproxy)',
    );
  }
}

async function liveNamespaces(): Promise<Set<string>> {
  const r = await runCommand(['ip', '-j', 'netns', 'list'], { timeoutMs: 10_000 });
  const text = r.stdout.trim();
  return new Set(text === '' ? [] : (JSON.parse(text) as { name: string }[]).map((n) => n.name));
}

function readState(file: string): ShopLabRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const state = readLabRecord(file);
    // The lab's own record is the freshest (it lists every process started).
    const own = join(state.dir, 'lab.json');
    return existsSync(own) ? readLabRecord(own) : state;
  } catch (e) {
    throw new UserError(
      'RAMPART_ERR_FILE',
      `${file}: unreadable lab state (${e instanceof Error ? e.message : String(e)}); remove it if no lab is up`,
    );
  }
}

function writeState(file: string, record: ShopLabRecord): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

function describeLab(record: ShopLabRecord, stateFile: string): string {
  const ns = record.namespaces;
  const width = Math.max(...Object.values(ns).map((n) => n.length));
  const lines = [
    `rampart: shop lab ${record.prefix} is up (state: ${stateFile}, files: ${record.dir})`,
    '',
    `  ${'namespace'.padEnd(width)}  address       runs`,
    `  ${ns.sw.padEnd(width)}  -             bridge br0 (the switch, ${SHOP_SUBNET})`,
  ];
  const runs: Record<string, string> = {
    client: 'your customers (curl, steady client)',
    lb: `HAProxy on ${SHOP_ADDRESSES.lb}:80, stats socket ${join(record.dir, 'haproxy.sock')}`,
    web1: `shop app :80, access log ${join(record.dir, 'web1-access.log')}`,
    web2: `shop app :80, access log ${join(record.dir, 'web2-access.log')}`,
    srv: `Rampart server ${SERVER_URL} (web1 and web2 run its agents)`,
  };
  for (const h of SHOP_HOSTS) lines.push(`  ${ns[h].padEnd(width)}  ${SHOP_ADDRESSES[h].padEnd(12)}  ${runs[h] ?? ''}`);
  lines.push(
    '',
    'Try:',
    `  ip netns exec ${ns.client} curl -s ${SHOP_URL}`,
    `  ip netns exec ${ns.web1} nft list ruleset`,
    `  ip netns exec ${ns.client} node ${distScript('steady-client.js')} --url ${SHOP_URL} --rate 50 --duration 30 --out /tmp/steady.json`,
    `  echo 'show stat' | socat stdio ${join(record.dir, 'haproxy.sock')}   # if socat is installed`,
    '',
    'Watch the founding outage being refused at plan, then forced through and rolled back by the agent:',
    '  rampart lab outage',
    '',
    'Remove it with: rampart lab down',
  );
  return `${lines.join('\n')}\n`;
}

/** The CLI script this process runs (dist/cli/main.js), for the lab's server and agents. */
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

interface LabTokens {
  readonly url: string;
  readonly tokens: Record<string, string>;
}

/** Runs the rampart CLI in the lab's client namespace as one of the lab's people, echoing what it runs. */
function labCli(record: ShopLabRecord, t: LabTokens, who: string, args: readonly string[], echo = true) {
  if (echo)
    process.stdout.write(`\n$ rampart ${args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')}   # as ${who}\n`);
  return runCommand(['ip', 'netns', 'exec', record.namespaces.client, process.execPath, MAIN, ...args], {
    allowFailure: true,
    timeoutMs: 120_000,
    env: { ...process.env, NO_COLOR: '1', RAMPART_SERVER: t.url, RAMPART_TOKEN: t.tokens[who] ?? '' },
  });
}

/** Takes web1 and web2 under management with the baseline ruleset (a normal, reviewed change). */
async function manageWebServers(shop: ShopLab, r: RampartLab): Promise<void> {
  const file = join(shop.paths.dir, 'baseline.nft');
  writeFileSync(file, BASELINE_RULESET);
  const p = await r.cli(
    'alice',
    'change',
    'propose',
    file,
    '--group',
    'web',
    '--reason',
    'take the web servers under management',
    '--json',
  );
  if (p.code !== 0) throw new Error(`proposing the baseline failed: ${p.stderr}`);
  const id = String((JSON.parse(p.stdout) as { change: { id: number } }).change.id);
  const a = await r.cli('bob', 'change', 'approve', id);
  if (a.code !== 0) throw new Error(`approving the baseline failed: ${a.stderr}`);
  const w = await r.cli('alice', 'change', 'apply', id, '--watch');
  if (w.code !== 0) throw new Error(`rolling out the baseline failed:\n${w.stdout}${w.stderr}`);
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a shop in network namespaces on this machine (client, HAProxy, web1, web2): lab up / lab down');

  lab
    .command('up')
    .description('build the shop lab, start the shop apps and HAProxy, and leave it running (needs root, ip, haproxy)')
    .option(
      '--state <file>',
      'where the lab is recorded (default $RAMPART_LAB_STATE, $RAMPART_DATA_DIR/lab.json, /run/rampart-lab.json)',
    )
    .option('--name <id>', 'fixed name part instead of a random one: namespaces rampart-shop-<id>-<role>')
    .option('--json', 'print the lab record as JSON')
    .action(async (o: LabCliOptions & { name?: string }) =>
      run(Boolean(o.json), async () => {
        refuseUnlessAble('up', ['ip', 'haproxy']);
        if (o.name !== undefined && !/^[a-z0-9]{1,16}$/.test(o.name)) {
          throw new UserError('RAMPART_ERR_USAGE', `--name: '${o.name}' is not [a-z0-9]{1,16}`);
        }
        const stateFile = o.state ?? defaultLabStateFile();
        const previous = readState(stateFile);
        if (previous) {
          const live = await liveNamespaces();
          if (Object.values(previous.namespaces).some((n) => live.has(n))) {
            throw new UserError(
              'RAMPART_ERR_STATE',
              `a shop lab is already up (${previous.prefix}, recorded in ${stateFile}); run 'rampart lab down' first`,
            );
          }
        }
        await sweepStaleShopLabs();
        const shop = await createShopLab(o.name ? { name: o.name } : {});
        let record: ShopLabRecord;
        try {
          await startShop(shop);
          const r = await startRampart(shop, MAIN, { confirmTimeoutSeconds: 15 });
          await manageWebServers(shop, r);
          writeFileSync(join(shop.paths.dir, 'tokens.json'), `${JSON.stringify({ url: r.url, tokens: r.tokens })}\n`, {
            mode: 0o600,
          });
          const answer = await shop.httpGet('client', SHOP_URL);
          if (answer.status !== 200) throw new Error(`the shop answered ${answer.status} through HAProxy`);
          record = shop.detach();
          writeState(stateFile, record);
        } catch (e) {
          await shop.destroy();
          throw e;
        }
        if (o.json) printJson({ stateFile, ...record });
        else process.stdout.write(describeLab(record, stateFile));
      }),
    );

  lab
    .command('outage')
    .description(
      'replay the founding outage in the running lab: the change is blocked at plan, then forced through as an emergency and rolled back by the agent on web1 while web2 keeps serving',
    )
    .option('--state <file>', 'the lab record written by lab up (same default)')
    .action(async (o: LabCliOptions) =>
      run(false, async () => {
        refuseUnlessAble('outage', ['ip']);
        const stateFile = o.state ?? defaultLabStateFile();
        const record = readState(stateFile);
        if (!record)
          throw new UserError(
            'RAMPART_ERR_STATE',
            `no shop lab is up (no state file ${stateFile}); run 'rampart lab up' first`,
          );
        const t = JSON.parse(readFileSync(join(record.dir, 'tokens.json'), 'utf8')) as LabTokens;
        const outage = join(record.dir, 'founding-outage.nft');
        writeFileSync(outage, FOUNDING_OUTAGE_NFT);
        const say = (text: string) => process.stdout.write(`\n# ${text}\n`);
        say('The founding change: "block all incoming traffic" for the web servers. Alice proposes it:');
        const p = await labCli(record, t, 'alice', [
          'change',
          'propose',
          outage,
          '--group',
          'web',
          '--reason',
          'block all incoming traffic',
        ]);
        process.stdout.write(p.stdout.split('\n').slice(0, 16).join('\n'));
        const id = /change (\d+):/.exec(p.stdout)?.[1];
        if (!id) throw new Error(`the proposal failed: ${p.stderr}`);
        say('The plan is blocked. Bob tries to approve it anyway:');
        process.stdout.write((await labCli(record, t, 'bob', ['change', 'approve', id])).stderr);
        say('Now suppose someone forces it through: an admin override, an approval, and an emergency apply.');
        await labCli(
          record,
          t,
          'admin',
          ['change', 'override', id, '--reason', 'lab: replaying the founding outage'],
          true,
        );
        await labCli(record, t, 'bob', ['change', 'approve', id], true);
        const w = await labCli(record, t, 'alice', [
          'change',
          'apply',
          id,
          '--emergency',
          'lab: replaying the founding outage',
          '--watch',
        ]);
        process.stdout.write(w.stdout);
        say(
          w.code === 1
            ? 'web1 rolled back by itself (the server could not reach the shop through the new rules); web2 was never touched. The shop stayed up behind HAProxy.'
            : 'Unexpected: the change was not rolled back. See the timeline above.',
        );
        const shop = await runCommand(
          [
            'ip',
            'netns',
            'exec',
            record.namespaces.client,
            process.execPath,
            '-e',
            `fetch(${JSON.stringify(SHOP_URL)}).then(r=>console.log(r.status, r.headers.get('x-served-by')))`,
          ],
          { allowFailure: true },
        );
        process.stdout.write(`\n$ curl ${SHOP_URL}   # from the client namespace\n${shop.stdout}`);
      }),
    );

  lab
    .command('down')
    .description('stop the processes of the lab that lab up started and delete its namespaces')
    .option('--state <file>', 'the lab record written by lab up (same default)')
    .option('--json', 'print what was removed as JSON')
    .action(async (o: LabCliOptions) =>
      run(Boolean(o.json), async () => {
        refuseUnlessAble('down', ['ip']);
        const stateFile = o.state ?? defaultLabStateFile();
        const record = readState(stateFile);
        const swept = await sweepStaleShopLabs();
        if (!record) {
          if (o.json) printJson({ removed: null, swept });
          else process.stdout.write(`rampart: no shop lab is up (no state file ${stateFile})\n`);
          return;
        }
        await destroyRecordedLab(record);
        rmSync(stateFile, { force: true });
        const left = [...(await liveNamespaces())].filter((n) => n.startsWith(`${record.prefix}-`));
        if (left.length > 0) throw new Error(`namespaces still present after lab down: ${left.join(', ')}`);
        if (o.json) printJson({ removed: record.prefix, processes: record.processes.length, swept });
        else {
          process.stdout.write(
            `rampart: shop lab ${record.prefix} removed (${record.processes.length} processes stopped, ` +
              `${Object.keys(record.namespaces).length} namespaces deleted)\n`,
          );
        }
      }),
    );
}
