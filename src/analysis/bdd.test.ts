import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bdd } from './bdd.js';

type Formula =
  | { op: 'var'; v: number }
  | { op: 'const'; value: boolean }
  | { op: 'not'; a: Formula }
  | { op: 'and' | 'or' | 'xor' | 'diff'; a: Formula; b: Formula };

const N = 6;

const formula: fc.Arbitrary<Formula> = fc.letrec<{ f: Formula }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ op: fc.constant('var' as const), v: fc.integer({ min: 0, max: N - 1 }) }),
    fc.record({ op: fc.constant('const' as const), value: fc.boolean() }),
    fc.record({ op: fc.constant('not' as const), a: tie('f') }),
    fc.record({
      op: fc.constantFrom('and' as const, 'or' as const, 'xor' as const, 'diff' as const),
      a: tie('f'),
      b: tie('f'),
    }),
  ),
})).f;

function evalF(f: Formula, x: number): boolean {
  switch (f.op) {
    case 'var':
      return ((x >> f.v) & 1) === 1;
    case 'const':
      return f.value;
    case 'not':
      return !evalF(f.a, x);
    case 'and':
      return evalF(f.a, x) && evalF(f.b, x);
    case 'or':
      return evalF(f.a, x) || evalF(f.b, x);
    case 'xor':
      return evalF(f.a, x) !== evalF(f.b, x);
    case 'diff':
      return evalF(f.a, x) && !evalF(f.b, x);
  }
}

function build(b: Bdd, f: Formula): number {
  switch (f.op) {
    case 'var':
      return b.ithVar(f.v);
    case 'const':
      return f.value ? 1 : 0;
    case 'not':
      return b.not(build(b, f.a));
    default: {
      const x = build(b, f.a);
      const y = build(b, f.b);
      return f.op === 'and' ? b.and(x, y) : f.op === 'or' ? b.or(x, y) : f.op === 'xor' ? b.xor(x, y) : b.diff(x, y);
    }
  }
}

const bit = (x: number) => (v: number) => ((x >> v) & 1) === 1;

describe('Bdd', () => {
  // A tiny node table and cache, so that growth and cache collisions are exercised too.
  const fresh = () => new Bdd(16, 4);

  it('matches the truth table and satCount of random formulas', () => {
    fc.assert(
      fc.property(formula, (f) => {
        const b = fresh();
        const n = build(b, f);
        let count = 0;
        for (let x = 0; x < 1 << N; x++) {
          const want = evalF(f, x);
          if (want) count++;
          expect(b.evaluate(n, bit(x))).toBe(want);
        }
        expect(b.satCount(n, 0, N)).toBe(BigInt(count));
      }),
      { numRuns: 300 },
    );
  });

  it('is canonical: equivalent formulas get the same node', () => {
    fc.assert(
      fc.property(formula, formula, (f, g) => {
        const b = fresh();
        const x = build(b, f);
        const y = build(b, g);
        let same = true;
        for (let a = 0; a < 1 << N; a++) if (evalF(f, a) !== evalF(g, a)) same = false;
        expect(x === y).toBe(same);
        expect(b.implies(x, b.or(x, y))).toBe(true);
        expect(b.disjoint(x, y)).toBe(b.and(x, y) === 0);
        expect(b.implies(x, y)).toBe(b.diff(x, y) === 0);
        expect(b.implies(y, x)).toBe(b.diff(y, x) === 0);
      }),
      { numRuns: 300 },
    );
  });

  it('quantifies, restricts and flips like brute force', () => {
    fc.assert(
      fc.property(
        formula,
        fc.subarray([0, 1, 2, 3, 4, 5]),
        fc.array(fc.tuple(fc.integer({ min: 0, max: N - 1 }), fc.boolean()), { maxLength: 3 }),
        (f, qs, lits) => {
          const b = fresh();
          const n = build(b, f);
          const vs = b.varSet(qs);
          const ex = b.exists(n, vs);
          const fa = b.forall(n, vs);
          const fl = b.flip(n, vs);
          const uniq = new Map(lits);
          const cube = b.cube(uniq);
          const rs = b.restrict(n, cube);
          const qmask = qs.reduce((m, v) => m | (1 << v), 0);
          for (let x = 0; x < 1 << N; x++) {
            const others: boolean[] = [];
            for (let y = 0; y < 1 << N; y++) if ((y & ~qmask) === (x & ~qmask)) others.push(evalF(f, y));
            expect(b.evaluate(ex, bit(x))).toBe(others.some(Boolean));
            expect(b.evaluate(fa, bit(x))).toBe(others.every(Boolean));
            expect(b.evaluate(fl, bit(x))).toBe(evalF(f, x ^ qmask));
            let y = x;
            for (const [v, val] of uniq) y = val ? y | (1 << v) : y & ~(1 << v);
            expect(b.evaluate(rs, bit(x))).toBe(evalF(f, y));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('projects onto a variable range, and projects a difference without building it, like exists over the rest', () => {
    fc.assert(
      fc.property(formula, formula, fc.integer({ min: 0, max: N }), fc.integer({ min: 0, max: N }), (fa, fb, i, j) => {
        const lo = Math.min(i, j);
        const hi = Math.max(i, j);
        const b = fresh();
        const a = build(b, fa);
        const x = build(b, fb);
        const rest = b.varSet([0, 1, 2, 3, 4, 5].filter((v) => v < lo || v >= hi));
        // Twice over two ranges: answers come from the operation cache the second time, and the ranges' cached
        // entries must not answer for each other.
        for (let k = 0; k < 2; k++) {
          expect(b.projectOnto(a, lo, hi)).toBe(b.exists(a, rest));
          expect(b.diffProjectOnto(a, x, lo, hi)).toBe(b.exists(b.diff(a, x), rest));
          expect(b.diffProjectOnto(a, x, 0, N)).toBe(b.diff(a, x));
          expect(b.diffProjectOnto(a, x, 0, 0) === 0).toBe(b.implies(a, x));
        }
      }),
      { numRuns: 400 },
    );
  });

  it('meetsOutside(a, b, negs) says whether a and b less the union of negs is non-empty, without building it', () => {
    let yes = 0;
    let no = 0;
    fc.assert(
      fc.property(formula, formula, fc.array(formula, { maxLength: 4 }), (fa, fb, fn) => {
        const b = fresh();
        const a = build(b, fa);
        const x = build(b, fb);
        const negs = fn.map((f) => build(b, f));
        const want = b.diff(b.and(a, x), b.orAll(negs)) !== 0;
        expect(b.meetsOutside(a, x, negs)).toBe(want);
        if (want) yes++;
        else no++;
      }),
      { numRuns: 600 },
    );
    expect(yes).toBeGreaterThan(50);
    expect(no).toBeGreaterThan(50);
  });

  it('andRestrict(a, x, cube) is a and restrict(x, cube)', () => {
    fc.assert(
      fc.property(
        formula,
        formula,
        fc.array(fc.tuple(fc.integer({ min: 0, max: N - 1 }), fc.boolean()), { maxLength: 4 }),
        (fa, fx, lits) => {
          const b = fresh();
          const a = build(b, fa);
          const x = build(b, fx);
          const cube = b.cube(new Map(lits));
          // Twice: the second answer comes from the operation cache.
          expect(b.andRestrict(a, x, cube)).toBe(b.and(a, b.restrict(x, cube)));
          expect(b.andRestrict(a, x, cube)).toBe(b.and(a, b.restrict(x, cube)));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a PairUnion of (set, cube) pairs is the union of their andRestricts, for every x asked', () => {
    const pair = fc.tuple(
      formula,
      fc.oneof(
        fc.constant([] as [number, boolean][]),
        fc.array(fc.tuple(fc.integer({ min: 0, max: N - 1 }), fc.boolean()), { maxLength: 4 }),
      ),
    );
    fc.assert(
      fc.property(
        fc.array(pair, { minLength: 2, maxLength: 16 }),
        fc.array(formula, { minLength: 1, maxLength: 4 }),
        (pairs, xs) => {
          const b = fresh();
          const as = pairs.map(([f]) => build(b, f));
          const cubes = pairs.map(([, lits]) => b.cube(new Map(lits)));
          // few = 1: every list of two pairs or more is split (the default walks up to 8 pairs one by one).
          const u = b.pairUnion(as, cubes);
          const split = b.pairUnion(as, cubes, 1);
          // More than 8 pairs (FEW_PAIRS) split the list; fewer are walked pair by pair. Several x against one union
          // (the lists and their splits are kept; the memo is per call), each twice.
          for (const fx of [...xs, ...xs]) {
            const x = build(b, fx);
            const want = b.orAll(as.map((a, i) => b.andRestrict(a, x, cubes[i]!)));
            expect(u.of(x)).toBe(want);
            expect(split.of(x)).toBe(want);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a PairUnion refuses to be used after a collection', () => {
    const b = fresh();
    b.gcEnabled = true;
    const u = b.pairUnion([b.ithVar(0), b.ithVar(1), b.ithVar(2)], [1, b.cube(new Map([[3, true]])), 1]);
    b.collect();
    expect(() => u.of(b.ithVar(3))).toThrow(/after a garbage collection/);
  });

  it('enumerates paths that partition the set, counts them, and finds a satisfying assignment', () => {
    fc.assert(
      fc.property(formula, (f) => {
        const b = fresh();
        const n = build(b, f);
        let total = 0n;
        for (const path of b.paths(n)) {
          total += 1n << BigInt(N - path.length);
          expect(b.evaluate(b.and(n, b.cube(path)), () => false) || b.and(n, b.cube(path)) === b.cube(path)).toBe(true);
        }
        expect(total).toBe(b.satCount(n, 0, N));
        const paths = [...b.paths(n)].length;
        for (const cap of [1, 2, 3, 1000]) expect(b.pathCount(n, cap)).toBe(Math.min(cap, paths));
        const sat = b.anySat(n);
        if (n === 0) expect(sat).toBeUndefined();
        else expect(b.evaluate(n, (v) => sat!.get(v) ?? false)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('counts over wide variable ranges without losing precision', () => {
    const b = new Bdd();
    const n = b.ithVar(100);
    expect(b.satCount(n, 0, 300)).toBe(1n << 299n);
    expect(b.satCount(1, 0, 300)).toBe(1n << 300n);
    expect(b.satCount(0, 0, 300)).toBe(0n);
  });

  it('grows its tables past their initial size', () => {
    const b = new Bdd(16, 4);
    const num = (x: number) => b.cube(Array.from({ length: 12 }, (_, i) => [i, ((x >> (11 - i)) & 1) === 1] as const));
    let n = 0;
    for (let i = 0; i < 3000; i += 3) n = b.or(n, num(i));
    expect(b.nodeCount).toBeGreaterThan(100);
    expect(b.satCount(n, 0, 12)).toBe(1000n);
    expect(b.evaluate(n, (v) => ((2997 >> (11 - v)) & 1) === 1)).toBe(true);
    expect(b.evaluate(n, (v) => ((2998 >> (11 - v)) & 1) === 1)).toBe(false);
  });

  it('stays canonical across growth and collections: a node made again is the node kept', () => {
    fc.assert(
      fc.property(fc.array(formula, { minLength: 2, maxLength: 8 }), (fs) => {
        const b = new Bdd(16, 4);
        const kept = fs.map((f) => build(b, f));
        // Half of them are roots; the rest become garbage.
        const roots = kept.filter((_, i) => i % 2 === 0);
        b.addRoots((mark) => {
          for (const n of roots) mark(n);
        });
        b.collect();
        // Made again (over a rebuilt unique table, reusing freed numbers): the kept ones get their old numbers, and
        // every node still means its formula.
        fs.forEach((f, i) => {
          const again = build(b, f);
          if (i % 2 === 0) expect(again).toBe(kept[i]);
          for (let x = 0; x < 1 << N; x++) expect(b.evaluate(again, bit(x))).toBe(evalF(f, x));
        });
        // And equal functions are one node whatever the order they were made in.
        for (let i = 0; i < fs.length; i++) {
          for (let j = 0; j < fs.length; j++) {
            const same = Array.from({ length: 1 << N }, (_, x) => evalF(fs[i]!, x) === evalF(fs[j]!, x)).every(Boolean);
            expect(build(b, fs[i]!) === build(b, fs[j]!)).toBe(same);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('doubles its operation cache as nodes are made, up to the maximum, and keeps the cached results', () => {
    const b = new Bdd(16, 4, 10);
    const fixed = new Bdd(16, 4);
    const num = (m: Bdd, x: number) =>
      m.cube(Array.from({ length: 12 }, (_, i) => [i, ((x >> (11 - i)) & 1) === 1] as const));
    const build = (m: Bdd) => {
      let n = 0;
      for (let i = 0; i < 3000; i += 3) n = m.or(n, num(m, i));
      return n;
    };
    expect(b.cacheEntries).toBe(16);
    const n = build(b);
    expect(b.cacheEntries).toBe(1 << 10);
    expect(fixed.cacheEntries).toBe(16);
    expect(b.satCount(n, 0, 12)).toBe(1000n);
    expect(b.satCount(n, 0, 12)).toBe(fixed.satCount(build(fixed), 0, 12));
    // The same operations again: answered from the grown cache, with the same node.
    const hits = b.hits;
    const m = b.and(n, b.nithVar(0));
    expect(b.and(n, b.nithVar(0))).toBe(m);
    expect(b.hits).toBeGreaterThan(hits);
    expect(b.satCount(m, 0, 12)).toBe(BigInt([...Array(1000).keys()].filter((k) => 3 * k < 2048).length));
  });
});
