import { closeSync, copyFileSync, mkdtempSync, openSync, renameSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogTailer, type TailerState } from '../../src/agent/log-tailer.js';

let dir: string;
let path: string;
let seq = 0;
const fds: number[] = [];

/** A web server's view: an fd opened in append mode, kept open across a rename until it reopens. */
function writer(p = path): { write(n: number): void; partial(text: string): void; close(): void } {
  const fd = openSync(p, 'a');
  fds.push(fd);
  return {
    write(n: number) {
      let s = '';
      for (let i = 0; i < n; i++) s += `line ${++seq}\n`;
      writeSync(fd, s);
    },
    partial(text: string) {
      writeSync(fd, text);
    },
    close() {
      closeSync(fd);
      fds.splice(fds.indexOf(fd), 1);
    },
  };
}

/** Every line number seen, checked to be 1..seq exactly once each. */
function expectExactlyOnce(lines: readonly string[], from = 1): void {
  const nums = lines.map((l) => Number(/^line (\d+)$/.exec(l)?.[1]));
  expect(nums.filter((n) => Number.isNaN(n))).toEqual([]);
  const want = Array.from({ length: seq - from + 1 }, (_, i) => from + i);
  expect([...nums].sort((a, b) => a - b)).toEqual(want);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-tail-'));
  path = join(dir, 'access.log');
  seq = 0;
});
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

describe('LogTailer', () => {
  it('starts at the end of an existing log, returns complete lines only', async () => {
    const w = writer();
    w.write(10); // history: not counted
    const t = new LogTailer(path, undefined);
    expect(await t.poll(0)).toEqual([]);
    w.write(3);
    w.partial('line 14'); // no newline yet
    expect(await t.poll(1)).toEqual(['line 11', 'line 12', 'line 13']);
    w.partial('\n');
    seq = 14;
    expect(await t.poll(2)).toEqual(['line 14']);
    await t.close();
  });

  it('rotation by rename: finishes the old inode (also what its writer adds after the rename), then the new file', async () => {
    const w1 = writer();
    const t = new LogTailer(path, undefined, { drainMs: 1000 });
    await t.poll(0);
    const got: string[] = [];
    w1.write(100);
    got.push(...(await t.poll(1)));
    w1.write(20);
    renameSync(path, `${path}.1`);
    w1.write(5); // the server has not reopened yet
    got.push(...(await t.poll(2))); // no new file yet: keeps reading the old one
    w1.write(3);
    w1.partial('line 129'); // its last line, never finished
    seq = 129;
    const w2 = writer(); // the server reopens: a new file at the path
    w2.write(50);
    got.push(...(await t.poll(3)));
    w2.write(10);
    got.push(...(await t.poll(500)));
    expect(t.state().draining).toHaveLength(1);
    got.push(...(await t.poll(1500))); // the old file has been quiet for drainMs: its last line, closed
    expect(t.state().draining).toHaveLength(0);
    // line 129 was written without newline to the old file, then lines 130.. to the new one
    expectExactlyOnce(got);
    expect(got.indexOf('line 129')).toBeGreaterThan(got.indexOf('line 128'));
    await t.close();
  });

  it('rotation by truncation (copytruncate): reads the file again from its start', async () => {
    const w = writer();
    const t = new LogTailer(path, undefined);
    await t.poll(0);
    const got: string[] = [];
    w.write(50);
    got.push(...(await t.poll(1)));
    copyFileSync(path, `${path}.1`);
    truncateSync(path, 0);
    w.write(20); // O_APPEND: after the truncation, from byte 0
    got.push(...(await t.poll(2)));
    w.write(5);
    got.push(...(await t.poll(3)));
    expectExactlyOnce(got);
    await t.close();
  });

  it('an agent restart in the middle, also across a rename it did not see, loses and repeats nothing', async () => {
    const w1 = writer();
    const t1 = new LogTailer(path, undefined);
    await t1.poll(0);
    const got: string[] = [];
    w1.write(40);
    w1.partial('line 41');
    got.push(...(await t1.poll(1)));
    const saved: TailerState = JSON.parse(JSON.stringify(t1.state()));
    await t1.close(); // the agent stops
    w1.partial('\n');
    seq = 41;
    w1.write(9); // 42..50 to the old file
    renameSync(path, `${path}.1`);
    w1.close();
    const w2 = writer();
    w2.write(30); // 51..80 to the new one
    const t2 = new LogTailer(path, saved, { drainMs: 100 });
    got.push(...(await t2.poll(10)));
    w2.write(5);
    got.push(...(await t2.poll(200)));
    got.push(...(await t2.poll(300)));
    expectExactlyOnce(got);
    expect(got.slice(40, 50)).toEqual(Array.from({ length: 10 }, (_, i) => `line ${41 + i}`)); // old file first
    // and a second restart on the same file, with nothing new: nothing again
    const t3 = new LogTailer(path, JSON.parse(JSON.stringify(t2.state())));
    await t2.close();
    expect(await t3.poll(400)).toEqual([]);
    w2.write(2);
    got.push(...(await t3.poll(401)));
    expectExactlyOnce(got);
    await t3.close();
  });

  it('a restart after a copytruncate while it was away reads the file from its start', async () => {
    const w = writer();
    const t1 = new LogTailer(path, undefined);
    await t1.poll(0);
    w.write(30);
    const got = await t1.poll(1);
    const saved = t1.state();
    await t1.close();
    truncateSync(path, 0);
    w.write(4);
    const t2 = new LogTailer(path, saved);
    got.push(...(await t2.poll(2)));
    expectExactlyOnce(got);
    await t2.close();
  });

  it('says so when a rotated file it was reading is gone, and a log that appears later is read from its start', async () => {
    const logs: string[] = [];
    const w = writer();
    const t1 = new LogTailer(path, undefined);
    await t1.poll(0);
    w.write(3);
    await t1.poll(1);
    const saved = t1.state();
    await t1.close();
    w.close();
    rmSync(path);
    const t2 = new LogTailer(path, saved, { log: (l) => logs.push(l) });
    expect(await t2.poll(2)).toEqual([]);
    expect(logs.join('\n')).toMatch(/is gone .*were not counted/);
    const from = seq + 1;
    writer().write(2);
    const got = await t2.poll(3);
    expectExactlyOnce(got, from);
    await t2.close();
  });
});
