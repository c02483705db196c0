import { describe, expect, it } from 'vitest';
import { createProgress } from './progress.js';

/** A terminal (or not) that keeps what is written, and a clock the test moves. */
function setup(isTTY: boolean, env: NodeJS.ProcessEnv = {}, quiet = false) {
  const lines: string[] = [];
  let t = 0;
  const out = { isTTY, write: (s: string) => lines.push(s) };
  const p = createProgress({ quiet }, out, env, () => t);
  return { p, lines, at: (ms: number) => (t = ms) };
}

describe('progress lines', () => {
  it('on a terminal: nothing during the first second, then phases, counts at most once a second, the last count', () => {
    const { p, lines, at } = setup(true);
    p.phase('reading the rulesets');
    at(400);
    p.phase('compiling the input hook path');
    p.count(10, 5000, 'rules walked');
    expect(lines).toEqual([]);
    at(1200);
    p.count(3200, 5000, 'rules walked');
    at(1500);
    p.count(3300, 5000, 'rules walked');
    at(2300);
    p.count(4000, 5000, 'rules walked');
    at(2400);
    p.count(4100, 5000, 'rules walked');
    p.phase('looking for unreachable rules');
    at(2600);
    p.end();
    expect(lines).toEqual([
      'rampart: compiling the input hook path: 3,200 of 5,000 rules walked (1.2 s)\n',
      'rampart: compiling the input hook path: 4,000 of 5,000 rules walked (2.3 s)\n',
      'rampart: compiling the input hook path: 4,100 of 5,000 rules walked (2.4 s)\n',
      'rampart: looking for unreachable rules (2.4 s)\n',
    ]);
  });

  it('prints nothing when stderr is not a terminal, with --quiet, or with RAMPART_PROGRESS=0', () => {
    for (const [tty, env, quiet] of [
      [false, {}, false],
      [true, {}, true],
      [true, { RAMPART_PROGRESS: '0' }, false],
      [false, { RAMPART_PROGRESS: '1' }, true],
    ] as const) {
      const { p, lines, at } = setup(tty, env, quiet);
      at(5000);
      p.phase('compiling');
      p.count(1, 2, 'rules');
      p.end();
      expect(lines, JSON.stringify([tty, env, quiet])).toEqual([]);
    }
  });

  it('RAMPART_PROGRESS=1 shows them off a terminal, from the start', () => {
    const { p, lines, at } = setup(false, { RAMPART_PROGRESS: '1' });
    p.phase('compiling');
    at(100);
    p.count(5, 9, 'rules walked');
    p.end();
    expect(lines).toEqual(['rampart: compiling (0.0 s)\n', 'rampart: compiling: 5 of 9 rules walked (0.1 s)\n']);
  });
});
