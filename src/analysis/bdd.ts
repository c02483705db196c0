/**
 * A small, fast binary decision diagram package: reduced ordered BDDs with a hash-consed node table in typed arrays.
 *
 * Nodes are integers. 0 is false, 1 is true; every other node is (var, low, high) with low != high, stored in three
 * Int32Arrays that grow by doubling. Variable 0 is the top of the order. An open-addressing unique table keeps one
 * node per triple, so two BDDs are equal exactly when their node numbers are equal. Binary operations go through a
 * direct-mapped operation cache (a lossy memo: a collision just recomputes). The cache starts at the size the user
 * asks for and doubles, up to a maximum, whenever the nodes in use are more than half its entries: a small problem keeps a
 * small table (cheap to allocate and clear, and within the processor's caches), a large one gets a large table.
 *
 * Garbage collection is explicit: users register root providers (everything they hold node numbers in) and call
 * maybeCollect() at safe points, where no node number lives only in a local variable. A collection marks what the
 * roots reach, puts the rest on a free list (node numbers of live nodes never change), rebuilds the unique table and
 * empties the operation cache. Without a safe point nothing is ever freed.
 *
 * Recursion depth is bounded by the number of variables on a path, which the packet space keeps in the hundreds.
 */

const TERMINAL_VAR = 0x3fffffff;
/** Marks a freed node (never a variable, never looked up: freed nodes are not in the unique table). */
const FREE_VAR = -1;

/**
 * A unique-table entry is a node number (bits 0-26) and 4 bits of the node's hash (bits 27-30): a probe compares the
 * hash bits first and reads the node only when they agree, so a probe past other nodes' entries (most of them) does
 * not touch the node table. mk's reads of the node table were most of its time: a cache miss per probe.
 */
const UNIQUE_INDEX = 0x07ffffff;
const UNIQUE_TAG = 0x78000000;
/** Node numbers must fit in an entry's index bits: 2^27 nodes (1.6 GB of node table). */
const MAX_NODES = UNIQUE_INDEX + 1;

/** A unique-table entry's hash bits: the hash's top 4 bits, at bits 27-30 of the entry. */
function uniqueTag(h: number): number {
  return (h >>> 28) << 27;
}

const OP_AND = 1;
const OP_OR = 2;
const OP_XOR = 3;
const OP_DIFF = 4;
const OP_NOT = 5;
const OP_EXISTS = 6;
const OP_RESTRICT = 7;
const OP_FLIP = 8;
const OP_IMPLIES_EMPTY = 9;
const OP_SUBSET = 10;
/**
 * The two projections onto a variable range [lo, hi): their operation codes carry the range (lo * 2^16 + width,
 * above every other code), so one cache holds the projections onto different fields apart.
 */
const OP_PROJECT = 1 << 16;
const OP_PROJECT_DIFF = 1 << 30;

export class Bdd {
  /**
   * The nodes, interleaved: node n is (var, low, high) at 3n, 3n + 1, 3n + 2. One array rather than three makes a
   * unique-table probe and an operation's look at a node touch one cache line rather than three.
   */
  private nodes: Int32Array;
  /** Node capacity (nodes.length / 3). */
  private capacity: number;
  private next = 2;
  private unique: Int32Array;
  private uniqueMask: number;
  /**
   * The operation cache's array is allocated at the maximum size once and never replaced (the compiled code of the
   * operations keeps it as a constant: replacing it made a 1k-rule flow query 2.3x slower); only the first
   * cacheMask + 1 entries are in use. The untouched rest is zero pages the system has not backed with memory.
   * Entry i is (a, b, op, result) at 4i .. 4i + 3 (a look-up touches one cache line); a = -1 marks an empty entry.
   */
  private readonly cache: Int32Array;
  private cacheMask: number;
  /** The operation cache grows no further than this many entries. */
  private readonly cacheMax: number;
  /** Operation cache statistics. */
  hits = 0;
  misses = 0;
  /** Freed node numbers, reused by mk before the table grows. */
  private freeList = new Int32Array(0);
  private freeTop = 0;
  private allocatedSinceGc = 0;
  private liveAfterGc = 0;
  private readonly roots = new Set<(mark: (n: number) => void) => void>();
  /** Number of collections so far (values derived from node numbers must be recomputed when it changes). */
  gcEpoch = 0;
  /** Off by default: every holder of node numbers must register roots before a manager may collect. */
  gcEnabled = false;
  /** Collect when this many nodes were made since the last collection (and at least as many as survived it). */
  gcMinNodes = 4_000_000;
  gcStats = { collections: 0, freed: 0, ms: 0 };

  /**
   * initialNodes: the node table's first size (it grows). cacheBits: log2 of the operation cache's first size;
   * maxCacheBits (default cacheBits: a fixed size): log2 of the size it may grow to as nodes are made.
   */
  constructor(initialNodes = 1 << 16, cacheBits = 20, maxCacheBits = cacheBits) {
    const n = Math.min(MAX_NODES, Math.max(16, initialNodes));
    this.nodes = new Int32Array(n * 3);
    this.capacity = n;
    this.nodes[0] = TERMINAL_VAR;
    this.nodes[3] = TERMINAL_VAR;
    this.nodes[4] = 1;
    this.nodes[5] = 1;
    let u = 1;
    while (u < n * 2) u <<= 1;
    this.unique = new Int32Array(u);
    this.uniqueMask = u - 1;
    const c = 1 << cacheBits;
    this.cacheMax = 1 << Math.max(cacheBits, maxCacheBits);
    this.cache = new Int32Array(this.cacheMax * 4).fill(-1, 0, c * 4);
    this.cacheMask = c - 1;
  }

  /** Number of nodes in use, terminals included. */
  get nodeCount(): number {
    return this.next - this.freeTop;
  }

  /** Entries of the operation cache now (it grows up to its maximum as nodes are made). */
  get cacheEntries(): number {
    return this.cacheMask + 1;
  }

  /** Nodes made since the manager was created (freed ones included). */
  private madeTotal = 0;
  get nodesMade(): number {
    return this.madeTotal;
  }

  /**
   * Registers a root provider: at each collection it is called with `mark` and must pass every node it holds.
   * Returns a function that unregisters it.
   */
  addRoots(provider: (mark: (n: number) => void) => void): () => void {
    this.roots.add(provider);
    return () => this.roots.delete(provider);
  }

  /** Collects garbage if enough nodes were made since the last collection. Only at a safe point. */
  maybeCollect(): boolean {
    if (!this.gcEnabled || this.allocatedSinceGc < Math.max(this.gcMinNodes, this.liveAfterGc)) return false;
    this.collect();
    return true;
  }

  /** Frees every node no root reaches. Only at a safe point. */
  collect(): void {
    const t0 = performance.now();
    const n = this.next;
    const marked = new Uint8Array(n);
    marked[0] = 1;
    marked[1] = 1;
    let stack = new Int32Array(1024);
    let top = 0;
    const nodes = this.nodes;
    const mark = (root: number): void => {
      if (root < 2 || marked[root]) return;
      marked[root] = 1;
      stack[top++] = root;
      while (top > 0) {
        const x = stack[--top]!;
        if (top + 2 >= stack.length) {
          const bigger = new Int32Array(stack.length * 2);
          bigger.set(stack);
          stack = bigger;
        }
        const lo = nodes[x * 3 + 1]!;
        const hi = nodes[x * 3 + 2]!;
        if (nodes[x * 3] === TERMINAL_VAR) continue;
        if (lo >= 2 && !marked[lo]) {
          marked[lo] = 1;
          stack[top++] = lo;
        }
        if (hi >= 2 && !marked[hi]) {
          marked[hi] = 1;
          stack[top++] = hi;
        }
      }
    };
    for (const provider of this.roots) provider(mark);
    // Sweep: dead nodes go to the free list (already free ones included: they are unmarked and stay free).
    let freeCount = 0;
    for (let i = 2; i < n; i++) if (!marked[i]) freeCount++;
    const free = new Int32Array(freeCount);
    let k = 0;
    // Highest numbers first on the list's bottom: reuse starts from low numbers (keeps the table dense).
    for (let i = n - 1; i >= 2; i--) {
      if (marked[i]) continue;
      free[k++] = i;
      nodes[i * 3] = FREE_VAR;
      nodes[i * 3 + 1] = 0;
      nodes[i * 3 + 2] = 0;
    }
    const freedNow = freeCount - this.freeTop;
    this.freeList = free;
    this.freeTop = freeCount;
    // The unique table only holds live nodes again.
    this.unique.fill(0);
    const mask = this.uniqueMask;
    const u = this.unique;
    for (let i = 2; i < n; i++) {
      if (!marked[i]) continue;
      const hh = hash3(nodes[i * 3]!, nodes[i * 3 + 1]!, nodes[i * 3 + 2]!);
      let h = hh & mask;
      while (u[h] !== 0) h = (h + 1) & mask;
      u[h] = uniqueTag(hh) | i;
    }
    this.cache.fill(-1, 0, (this.cacheMask + 1) * 4);
    this.countMemo.clear();
    this.liveAfterGc = n - freeCount;
    this.allocatedSinceGc = 0;
    this.gcEpoch++;
    this.gcStats.collections++;
    this.gcStats.freed += freedNow;
    this.gcStats.ms += performance.now() - t0;
  }

  varOf(f: number): number {
    return this.nodes[f * 3]!;
  }
  low(f: number): number {
    return this.nodes[f * 3 + 1]!;
  }
  high(f: number): number {
    return this.nodes[f * 3 + 2]!;
  }
  isTerminal(f: number): boolean {
    return f < 2;
  }

  /** The node (v, low, high), reduced and hash-consed. */
  mk(v: number, low: number, high: number): number {
    if (low === high) return low;
    const mask = this.uniqueMask;
    const hh = hash3(v, low, high);
    const tag = uniqueTag(hh);
    let h = hh & mask;
    const u = this.unique;
    for (;;) {
      const e = u[h]!;
      if (e === 0) break;
      if ((e & UNIQUE_TAG) === tag) {
        const n = e & UNIQUE_INDEX;
        if (this.nodes[n * 3] === v && this.nodes[n * 3 + 1] === low && this.nodes[n * 3 + 2] === high) return n;
      }
      h = (h + 1) & mask;
    }
    let n: number;
    if (this.freeTop > 0) n = this.freeList[--this.freeTop]!;
    else {
      if (this.next >= this.capacity) this.growNodes();
      n = this.next++;
    }
    this.nodes[n * 3] = v;
    this.nodes[n * 3 + 1] = low;
    this.nodes[n * 3 + 2] = high;
    u[h] = tag | n;
    this.allocatedSinceGc++;
    this.madeTotal++;
    const live = this.next - this.freeTop;
    if (live * 2 > mask) this.growUnique();
    if (live * 2 > this.cacheMask && this.cacheMask + 1 < this.cacheMax) this.growCache();
    return n;
  }

  /**
   * Doubles the operation cache in place, keeping its entries: an entry at slot i stays there or moves to
   * i + the old size (the larger mask takes one more bit of the same hash).
   */
  private growCache(): void {
    const old = this.cacheMask + 1;
    const mask = old * 2 - 1;
    const c = this.cache;
    c.fill(-1, old * 4, old * 8);
    for (let i = 0; i < old; i++) {
      const x = c[i * 4]!;
      if (x === -1) continue;
      const j = hash3(c[i * 4 + 2]!, x, c[i * 4 + 1]!) & mask;
      if (j === i) continue;
      c[j * 4] = x;
      c[j * 4 + 1] = c[i * 4 + 1]!;
      c[j * 4 + 2] = c[i * 4 + 2]!;
      c[j * 4 + 3] = c[i * 4 + 3]!;
      c[i * 4] = -1;
    }
    this.cacheMask = mask;
  }

  private growNodes(): void {
    // 1.5x, not 2x: at tens of millions of nodes the old and new arrays are both alive while copying.
    if (this.capacity >= MAX_NODES) {
      throw new Error(
        `BDD: more than ${MAX_NODES} nodes (the unique table's limit); the analysis is too large for one packet space`,
      );
    }
    const size = Math.min(MAX_NODES, Math.ceil(this.capacity * 1.5));
    const b = new Int32Array(size * 3);
    b.set(this.nodes);
    this.nodes = b;
    this.capacity = size;
  }

  private growUnique(): void {
    const size = this.unique.length * 2;
    const mask = size - 1;
    const u = new Int32Array(size);
    for (let n = 2; n < this.next; n++) {
      if (this.nodes[n * 3] === FREE_VAR) continue;
      const hh = hash3(this.nodes[n * 3]!, this.nodes[n * 3 + 1]!, this.nodes[n * 3 + 2]!);
      let h = hh & mask;
      while (u[h] !== 0) h = (h + 1) & mask;
      u[h] = uniqueTag(hh) | n;
    }
    this.unique = u;
    this.uniqueMask = mask;
  }

  private lookup(op: number, a: number, b: number): number {
    const i = (hash3(op, a, b) & this.cacheMask) * 4;
    const c = this.cache;
    if (c[i] === a && c[i + 1] === b && c[i + 2] === op) {
      this.hits++;
      return c[i + 3]!;
    }
    this.misses++;
    return -1;
  }

  private store(op: number, a: number, b: number, r: number): number {
    const i = (hash3(op, a, b) & this.cacheMask) * 4;
    const c = this.cache;
    c[i] = a;
    c[i + 1] = b;
    c[i + 2] = op;
    c[i + 3] = r;
    return r;
  }

  /** The variable itself, as a function. */
  ithVar(v: number): number {
    return this.mk(v, 0, 1);
  }
  nithVar(v: number): number {
    return this.mk(v, 1, 0);
  }

  and(a: number, b: number): number {
    if (a === 0 || b === 0) return 0;
    if (a === 1 || a === b) return b;
    if (b === 1) return a;
    if (a > b) {
      const t = a;
      a = b;
      b = t;
    }
    const c = this.lookup(OP_AND, a, b);
    if (c >= 0) return c;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: number;
    if (va === vb)
      r = this.mk(
        va,
        this.and(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!),
        this.and(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!),
      );
    else if (va < vb) r = this.mk(va, this.and(this.nodes[a * 3 + 1]!, b), this.and(this.nodes[a * 3 + 2]!, b));
    else r = this.mk(vb, this.and(a, this.nodes[b * 3 + 1]!), this.and(a, this.nodes[b * 3 + 2]!));
    return this.store(OP_AND, a, b, r);
  }

  or(a: number, b: number): number {
    if (a === 1 || b === 1) return 1;
    if (a === 0 || a === b) return b;
    if (b === 0) return a;
    if (a > b) {
      const t = a;
      a = b;
      b = t;
    }
    const c = this.lookup(OP_OR, a, b);
    if (c >= 0) return c;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: number;
    if (va === vb)
      r = this.mk(
        va,
        this.or(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!),
        this.or(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!),
      );
    else if (va < vb) r = this.mk(va, this.or(this.nodes[a * 3 + 1]!, b), this.or(this.nodes[a * 3 + 2]!, b));
    else r = this.mk(vb, this.or(a, this.nodes[b * 3 + 1]!), this.or(a, this.nodes[b * 3 + 2]!));
    return this.store(OP_OR, a, b, r);
  }

  xor(a: number, b: number): number {
    if (a === b) return 0;
    if (a === 0) return b;
    if (b === 0) return a;
    if (a === 1) return this.not(b);
    if (b === 1) return this.not(a);
    if (a > b) {
      const t = a;
      a = b;
      b = t;
    }
    const c = this.lookup(OP_XOR, a, b);
    if (c >= 0) return c;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: number;
    if (va === vb)
      r = this.mk(
        va,
        this.xor(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!),
        this.xor(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!),
      );
    else if (va < vb) r = this.mk(va, this.xor(this.nodes[a * 3 + 1]!, b), this.xor(this.nodes[a * 3 + 2]!, b));
    else r = this.mk(vb, this.xor(a, this.nodes[b * 3 + 1]!), this.xor(a, this.nodes[b * 3 + 2]!));
    return this.store(OP_XOR, a, b, r);
  }

  /** a and not b. */
  diff(a: number, b: number): number {
    if (a === 0 || b === 1 || a === b) return 0;
    if (b === 0) return a;
    if (a === 1) return this.not(b);
    const c = this.lookup(OP_DIFF, a, b);
    if (c >= 0) return c;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: number;
    if (va === vb)
      r = this.mk(
        va,
        this.diff(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!),
        this.diff(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!),
      );
    else if (va < vb) r = this.mk(va, this.diff(this.nodes[a * 3 + 1]!, b), this.diff(this.nodes[a * 3 + 2]!, b));
    else r = this.mk(vb, this.diff(a, this.nodes[b * 3 + 1]!), this.diff(a, this.nodes[b * 3 + 2]!));
    return this.store(OP_DIFF, a, b, r);
  }

  not(a: number): number {
    if (a < 2) return 1 - a;
    const c = this.lookup(OP_NOT, a, 0);
    if (c >= 0) return c;
    const r = this.mk(this.nodes[a * 3]!, this.not(this.nodes[a * 3 + 1]!), this.not(this.nodes[a * 3 + 2]!));
    return this.store(OP_NOT, a, 0, r);
  }

  /** If-then-else. */
  ite(f: number, g: number, h: number): number {
    return this.or(this.and(f, g), this.diff(h, f));
  }

  /** Whether a and b have no common satisfying assignment (without building a and b). */
  disjoint(a: number, b: number): boolean {
    if (a === 0 || b === 0) return true;
    if (a === 1 || b === 1 || a === b) return false;
    if (a > b) {
      const t = a;
      a = b;
      b = t;
    }
    const c = this.lookup(OP_IMPLIES_EMPTY, a, b);
    if (c >= 0) return c === 1;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: boolean;
    if (va === vb)
      r =
        this.disjoint(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!) &&
        this.disjoint(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!);
    else if (va < vb) r = this.disjoint(this.nodes[a * 3 + 1]!, b) && this.disjoint(this.nodes[a * 3 + 2]!, b);
    else r = this.disjoint(a, this.nodes[b * 3 + 1]!) && this.disjoint(a, this.nodes[b * 3 + 2]!);
    this.store(OP_IMPLIES_EMPTY, a, b, r ? 1 : 0);
    return r;
  }

  /** Whether a implies b (a is a subset of b), without building a - b: stops at the first packet of a not in b. */
  implies(a: number, b: number): boolean {
    if (a === 0 || b === 1 || a === b) return true;
    if (a === 1 || b === 0) return false;
    const c = this.lookup(OP_SUBSET, a, b);
    if (c >= 0) return c === 1;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    let r: boolean;
    if (va === vb)
      r =
        this.implies(this.nodes[a * 3 + 1]!, this.nodes[b * 3 + 1]!) &&
        this.implies(this.nodes[a * 3 + 2]!, this.nodes[b * 3 + 2]!);
    else if (va < vb) r = this.implies(this.nodes[a * 3 + 1]!, b) && this.implies(this.nodes[a * 3 + 2]!, b);
    else r = this.implies(a, this.nodes[b * 3 + 1]!) && this.implies(a, this.nodes[b * 3 + 2]!);
    this.store(OP_SUBSET, a, b, r ? 1 : 0);
    return r;
  }

  /** A cube of positive literals: the variable set for exists/forall/flip. */
  varSet(vars: Iterable<number>): number {
    const sorted = [...new Set(vars)].sort((x, y) => y - x);
    let r = 1;
    for (const v of sorted) r = this.mk(v, 0, r);
    return r;
  }

  /** A cube from literals (var -> value). */
  cube(lits: Iterable<readonly [number, boolean]>): number {
    const sorted = [...lits].sort((x, y) => y[0] - x[0]);
    let r = 1;
    for (const [v, val] of sorted) r = val ? this.mk(v, 0, r) : this.mk(v, r, 0);
    return r;
  }

  /** Existential quantification of the variables of `vars` (a varSet). */
  exists(f: number, vars: number): number {
    if (f < 2 || vars === 1) return f;
    const vf = this.nodes[f * 3]!;
    while (vars !== 1 && this.nodes[vars * 3]! < vf) vars = this.nodes[vars * 3 + 2]!;
    if (vars === 1) return f;
    const c = this.lookup(OP_EXISTS, f, vars);
    if (c >= 0) return c;
    let r: number;
    if (this.nodes[vars * 3] === vf) {
      const rest = this.nodes[vars * 3 + 2]!;
      const lo = this.exists(this.nodes[f * 3 + 1]!, rest);
      r = lo === 1 ? 1 : this.or(lo, this.exists(this.nodes[f * 3 + 2]!, rest));
    } else {
      r = this.mk(vf, this.exists(this.nodes[f * 3 + 1]!, vars), this.exists(this.nodes[f * 3 + 2]!, vars));
    }
    return this.store(OP_EXISTS, f, vars, r);
  }

  /**
   * ∃ every variable outside [lo, hi): f projected onto the variables lo .. hi - 1 (one field's bits). As
   * exists(f, varSet(every other variable)), without the variable set.
   */
  projectOnto(f: number, lo: number, hi: number): number {
    return this.project(f, lo, hi, OP_PROJECT + lo * 65536 + (hi - lo));
  }

  private project(f: number, lo: number, hi: number, op: number): number {
    if (f < 2) return f;
    const c = this.lookup(op, f, 0);
    if (c >= 0) return c;
    const v = this.nodes[f * 3]!;
    let r: number;
    if (v < lo || v >= hi) {
      const l = this.project(this.nodes[f * 3 + 1]!, lo, hi, op);
      r = l === 1 ? 1 : this.or(l, this.project(this.nodes[f * 3 + 2]!, lo, hi, op));
    } else {
      r = this.mk(
        v,
        this.project(this.nodes[f * 3 + 1]!, lo, hi, op),
        this.project(this.nodes[f * 3 + 2]!, lo, hi, op),
      );
    }
    return this.store(op, f, 0, r);
  }

  /**
   * projectOnto(diff(a, b), lo, hi) in one walk, without building a - b: describing a set widens each of its
   * cubes field by field, asking which values of the field a wider cube (a) has outside the set (b); a - b is most
   * of a large set, its projection a few intervals. 0 exactly when a is a subset of b.
   */
  diffProjectOnto(a: number, b: number, lo: number, hi: number): number {
    return this.diffProject(
      a,
      b,
      lo,
      hi,
      OP_PROJECT_DIFF + lo * 65536 + (hi - lo),
      OP_PROJECT + lo * 65536 + (hi - lo),
    );
  }

  private diffProject(a: number, b: number, lo: number, hi: number, op: number, opProject: number): number {
    if (a === 0 || b === 1 || a === b) return 0;
    if (b === 0) return this.project(a, lo, hi, opProject);
    const c = this.lookup(op, a, b);
    if (c >= 0) return c;
    const va = this.nodes[a * 3]!;
    const vb = this.nodes[b * 3]!;
    const v = Math.min(va, vb);
    const a0 = va === v ? this.nodes[a * 3 + 1]! : a;
    const a1 = va === v ? this.nodes[a * 3 + 2]! : a;
    const b0 = vb === v ? this.nodes[b * 3 + 1]! : b;
    const b1 = vb === v ? this.nodes[b * 3 + 2]! : b;
    let r: number;
    if (v < lo || v >= hi) {
      const l = this.diffProject(a0, b0, lo, hi, op, opProject);
      r = l === 1 ? 1 : this.or(l, this.diffProject(a1, b1, lo, hi, op, opProject));
    } else {
      r = this.mk(v, this.diffProject(a0, b0, lo, hi, op, opProject), this.diffProject(a1, b1, lo, hi, op, opProject));
    }
    return this.store(op, a, b, r);
  }

  /** Universal quantification of the variables of `vars` (a varSet). */
  forall(f: number, vars: number): number {
    return this.not(this.exists(this.not(f), vars));
  }

  /** The cofactor of f by a cube of literals (each variable of the cube fixed to its value). */
  restrict(f: number, cube: number): number {
    if (f < 2 || cube === 1) return f;
    const vf = this.nodes[f * 3]!;
    while (cube > 1 && this.nodes[cube * 3]! < vf)
      cube = this.nodes[cube * 3 + 1] === 0 ? this.nodes[cube * 3 + 2]! : this.nodes[cube * 3 + 1]!;
    if (cube === 1) return f;
    const c = this.lookup(OP_RESTRICT, f, cube);
    if (c >= 0) return c;
    let r: number;
    if (this.nodes[cube * 3] === vf) {
      const positive = this.nodes[cube * 3 + 1] === 0;
      const rest = positive ? this.nodes[cube * 3 + 2]! : this.nodes[cube * 3 + 1]!;
      r = this.restrict(positive ? this.nodes[f * 3 + 2]! : this.nodes[f * 3 + 1]!, rest);
    } else {
      r = this.mk(vf, this.restrict(this.nodes[f * 3 + 1]!, cube), this.restrict(this.nodes[f * 3 + 2]!, cube));
    }
    return this.store(OP_RESTRICT, f, cube, r);
  }

  /**
   * a and restrict(x, cube), without building the cofactor of x: the walk follows a, so its cost is a's size times
   * x's along a's paths (pulling many small pre-images back through one large set, one dnat flow each, costs the
   * small sets, not a copy of the large one per flow).
   */
  andRestrict(a: number, x: number, cube: number): number {
    if (a === 0 || x === 0) return 0;
    if (cube === 1) return this.and(a, x);
    if (x === 1) return a;
    if (a === 1) return this.restrict(x, cube);
    const va = this.nodes[a * 3]!;
    const vx = this.nodes[x * 3]!;
    const top = Math.min(va, vx);
    while (cube > 1 && this.nodes[cube * 3]! < top)
      cube = this.nodes[cube * 3 + 1] === 0 ? this.nodes[cube * 3 + 2]! : this.nodes[cube * 3 + 1]!;
    if (cube === 1) return this.and(a, x);
    // The cube's node number names the operation: results for different cubes never share a cache slot.
    const op = -cube;
    const c = this.lookup(op, a, x);
    if (c >= 0) return c;
    const vc = this.nodes[cube * 3]!;
    let r: number;
    if (vc < top) {
      // A fixed variable neither depends on: skip it.
      const rest = this.nodes[cube * 3 + 1] === 0 ? this.nodes[cube * 3 + 2]! : this.nodes[cube * 3 + 1]!;
      r = this.andRestrict(a, x, rest);
    } else if (vc === top) {
      const positive = this.nodes[cube * 3 + 1] === 0;
      const rest = positive ? this.nodes[cube * 3 + 2]! : this.nodes[cube * 3 + 1]!;
      // x takes the fixed branch; a still branches on the variable (it is a set of states before the rewrite).
      const xs = vx === vc ? (positive ? this.nodes[x * 3 + 2]! : this.nodes[x * 3 + 1]!) : x;
      if (va === vc) {
        r = this.mk(
          va,
          this.andRestrict(this.nodes[a * 3 + 1]!, xs, rest),
          this.andRestrict(this.nodes[a * 3 + 2]!, xs, rest),
        );
      } else {
        r = this.andRestrict(a, xs, rest);
      }
    } else if (va === vx) {
      r = this.mk(
        va,
        this.andRestrict(this.nodes[a * 3 + 1]!, this.nodes[x * 3 + 1]!, cube),
        this.andRestrict(this.nodes[a * 3 + 2]!, this.nodes[x * 3 + 2]!, cube),
      );
    } else if (va < vx) {
      r = this.mk(
        va,
        this.andRestrict(this.nodes[a * 3 + 1]!, x, cube),
        this.andRestrict(this.nodes[a * 3 + 2]!, x, cube),
      );
    } else {
      r = this.mk(
        vx,
        this.andRestrict(a, this.nodes[x * 3 + 1]!, cube),
        this.andRestrict(a, this.nodes[x * 3 + 2]!, cube),
      );
    }
    return this.store(op, a, x, r);
  }

  /**
   * The pairs (as[i], cubes[i]) as a PairUnion: its `of(x)` is the union over i of andRestrict(as[i], x, cubes[i])
   * (a cube of 1: and(as[i], x)). Valid until the next collection (it holds node numbers).
   */
  pairUnion(as: readonly number[], cubes: readonly number[], few = FEW_PAIRS): PairUnion {
    return new PairUnion(this, as, cubes, few);
  }

  /** f with each variable of `vars` (a varSet) negated. */
  flip(f: number, vars: number): number {
    if (f < 2 || vars === 1) return f;
    const vf = this.nodes[f * 3]!;
    while (vars !== 1 && this.nodes[vars * 3]! < vf) vars = this.nodes[vars * 3 + 2]!;
    if (vars === 1) return f;
    const c = this.lookup(OP_FLIP, f, vars);
    if (c >= 0) return c;
    let r: number;
    if (this.nodes[vars * 3] === vf) {
      const rest = this.nodes[vars * 3 + 2]!;
      r = this.mk(vf, this.flip(this.nodes[f * 3 + 2]!, rest), this.flip(this.nodes[f * 3 + 1]!, rest));
    } else {
      r = this.mk(vf, this.flip(this.nodes[f * 3 + 1]!, vars), this.flip(this.nodes[f * 3 + 2]!, vars));
    }
    return this.store(OP_FLIP, f, vars, r);
  }

  /** Union of many nodes, as a balanced tree (keeps intermediate results small). */
  orAll(nodes: readonly number[]): number {
    if (nodes.length === 0) return 0;
    let layer = nodes.slice();
    while (layer.length > 1) {
      const nextLayer: number[] = [];
      for (let i = 0; i < layer.length; i += 2) {
        nextLayer.push(i + 1 < layer.length ? this.or(layer[i]!, layer[i + 1]!) : layer[i]!);
      }
      layer = nextLayer;
    }
    return layer[0]!;
  }

  /** Intersection of many nodes. */
  andAll(nodes: readonly number[]): number {
    let r = 1;
    for (const n of nodes) {
      r = this.and(r, n);
      if (r === 0) break;
    }
    return r;
  }

  /**
   * Number of satisfying assignments over the variables [from, to): f must not depend on variables outside it.
   */
  satCount(f: number, from: number, to: number): bigint {
    // Nodes never change, so counts are kept across calls (the analyses count many overlapping sets); bounded.
    let memo = this.countMemo.get(to);
    if (!memo || memo.size > 2_000_000) {
      memo = new Map<number, bigint>();
      this.countMemo.set(to, memo);
    }
    const count = (n: number): bigint => {
      // Assignments of the variables from var(n) (or `to` for terminals) to the end.
      if (n === 0) return 0n;
      if (n === 1) return 1n;
      const m = memo.get(n);
      if (m !== undefined) return m;
      const v = this.nodes[n * 3]!;
      const lo = this.nodes[n * 3 + 1]!;
      const hi = this.nodes[n * 3 + 2]!;
      // Shifts by precomputed BigInt amounts: no BigInt made per edge but the sums themselves.
      const cl = count(lo);
      const ch = count(hi);
      const r =
        (cl === 0n ? 0n : cl << shiftBy(this.levelOf(lo, to) - v - 1)) +
        (ch === 0n ? 0n : ch << shiftBy(this.levelOf(hi, to) - v - 1));
      memo.set(n, r);
      return r;
    };
    if (f === 0) return 0n;
    return count(f) << shiftBy(this.levelOf(f, to) - from);
  }

  private readonly countMemo = new Map<number, Map<number, bigint>>();

  private levelOf(n: number, to: number): number {
    return n < 2 ? to : this.nodes[n * 3]!;
  }

  /** The variables f depends on, ascending. */
  support(f: number): number[] {
    const seen = new Uint8Array(this.next);
    const vars = new Set<number>();
    let stack = new Int32Array(256);
    let top = 0;
    if (f >= 2) stack[top++] = f;
    while (top > 0) {
      const n = stack[--top]!;
      if (seen[n]) continue;
      seen[n] = 1;
      vars.add(this.nodes[n * 3]!);
      if (top + 2 > stack.length) {
        const bigger = new Int32Array(stack.length * 2);
        bigger.set(stack);
        stack = bigger;
      }
      const lo = this.nodes[n * 3 + 1]!;
      const hi = this.nodes[n * 3 + 2]!;
      if (lo >= 2 && !seen[lo]) stack[top++] = lo;
      if (hi >= 2 && !seen[hi]) stack[top++] = hi;
    }
    return [...vars].sort((a, b) => a - b);
  }

  /**
   * Whether some assignment satisfies a and b and none of `negs`, without building a set: a depth-first search over
   * the operands' cofactors that stops at the first such assignment (states shown to have none are remembered). A
   * rule's cover test against the rules before it: a and b less their union would copy a large set.
   */
  meetsOutside(a: number, b: number, negs: readonly number[]): boolean {
    const nodes = this.nodes;
    const failed = new Set<string>();
    const go = (a: number, b: number, negs: readonly number[]): boolean => {
      if (a === 0 || b === 0) return false;
      const ns: number[] = [];
      for (const n of negs) {
        if (n === 1 || n === a || n === b) return false;
        if (n !== 0 && !ns.includes(n)) ns.push(n);
      }
      // Two-operand tests (the operation cache remembers them) prune a branch before the search descends it: a and
      // b meet nowhere, or one of them lies inside one of negs. Docker's masquerades meet the packets entering them
      // under one interface name of hundreds; under the others, an earlier network's masquerade covers them.
      if (this.disjoint(a, b)) return false;
      if (ns.length === 0) return true;
      for (const n of ns) if (this.implies(b, n) || this.implies(a, n)) return false;
      ns.sort((x, y) => x - y);
      const key = `${a},${b},${ns.join(',')}`;
      if (failed.has(key)) return false;
      let v = Math.min(nodes[a * 3]!, nodes[b * 3]!);
      for (const n of ns) v = Math.min(v, nodes[n * 3]!);
      const lo = (f: number) => (nodes[f * 3] === v ? nodes[f * 3 + 1]! : f);
      const hi = (f: number) => (nodes[f * 3] === v ? nodes[f * 3 + 2]! : f);
      const r = go(lo(a), lo(b), ns.map(lo)) || go(hi(a), hi(b), ns.map(hi));
      if (!r) failed.add(key);
      return r;
    };
    return go(a, b, negs);
  }

  /** Number of distinct nodes reachable from f (terminals excluded). */
  size(f: number): number {
    const seen = new Set<number>();
    const stack = [f];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n < 2 || seen.has(n)) continue;
      seen.add(n);
      stack.push(this.nodes[n * 3 + 1]!, this.nodes[n * 3 + 2]!);
    }
    return seen.size;
  }

  /**
   * One satisfying assignment: for each variable on the chosen path, its value. `prefer(v)` says which value to
   * take when both branches are satisfiable. Returns undefined for false.
   */
  anySat(f: number, prefer: (v: number) => boolean = () => false): Map<number, boolean> | undefined {
    if (f === 0) return undefined;
    const out = new Map<number, boolean>();
    let n = f;
    while (n > 1) {
      const v = this.nodes[n * 3]!;
      const want = prefer(v);
      const first = want ? this.nodes[n * 3 + 2]! : this.nodes[n * 3 + 1]!;
      if (first !== 0) {
        out.set(v, want);
        n = first;
      } else {
        out.set(v, !want);
        n = want ? this.nodes[n * 3 + 1]! : this.nodes[n * 3 + 2]!;
      }
    }
    return out;
  }

  /**
   * The number of paths from f to the true terminal (what paths(f) yields), counted up to `cap`: any larger number
   * reads as cap. One pass over f's nodes, where enumerating them may take millions of steps.
   */
  pathCount(f: number, cap: number): number {
    this.memoClear();
    const count = (n: number): number => {
      if (n < 2) return n;
      let c = this.memoGet(n);
      if (c < 0) {
        const lo = count(this.nodes[n * 3 + 1]!);
        // Past the cap already: the other branch is not visited (a large projection stops after cap paths).
        c = lo >= cap ? cap : Math.min(cap, lo + count(this.nodes[n * 3 + 2]!));
        this.memoSet(n, c);
      }
      return c;
    };
    return count(f);
  }

  /**
   * A scratch memo from node to a non-negative number for one traversal (pathCount): open addressing over typed
   * arrays, emptied in O(1) by a generation stamp. With a Map, the 186 counts over the cap of a whole-space reach on
   * fail2ban 10k took 1.5 s; with this, 0.67 s.
   */
  private memoKeys = new Int32Array(1 << 12);
  private memoVals = new Int32Array(1 << 12);
  private memoStamps = new Int32Array(1 << 12);
  private memoGen = 0;
  private memoSize = 0;

  private memoClear(): void {
    this.memoGen++;
    this.memoSize = 0;
    if (this.memoGen === 0x7fffffff) {
      this.memoStamps.fill(0);
      this.memoGen = 1;
    }
  }

  private memoGet(n: number): number {
    const mask = this.memoKeys.length - 1;
    let h = Math.imul(n, 0x9e3779b1) >>> 0;
    for (;;) {
      h &= mask;
      if (this.memoStamps[h] !== this.memoGen) return -1;
      if (this.memoKeys[h] === n) return this.memoVals[h]!;
      h++;
    }
  }

  private memoSet(n: number, v: number): void {
    if ((this.memoSize + 1) * 2 > this.memoKeys.length) this.memoGrow();
    const mask = this.memoKeys.length - 1;
    let h = Math.imul(n, 0x9e3779b1) >>> 0;
    for (;;) {
      h &= mask;
      if (this.memoStamps[h] !== this.memoGen) {
        this.memoStamps[h] = this.memoGen;
        this.memoKeys[h] = n;
        this.memoVals[h] = v;
        this.memoSize++;
        return;
      }
      if (this.memoKeys[h] === n) {
        this.memoVals[h] = v;
        return;
      }
      h++;
    }
  }

  private memoGrow(): void {
    const keys = this.memoKeys;
    const vals = this.memoVals;
    const stamps = this.memoStamps;
    const gen = this.memoGen;
    const size = keys.length * 2;
    this.memoKeys = new Int32Array(size);
    this.memoVals = new Int32Array(size);
    this.memoStamps = new Int32Array(size);
    this.memoGen = 1;
    this.memoSize = 0;
    for (let i = 0; i < keys.length; i++) if (stamps[i] === gen) this.memoSet(keys[i]!, vals[i]!);
  }

  /**
   * The paths to true, as lists of literals (var, value), depth-first with the low branch first. Stops after `limit`
   * paths. Variables not on a path are free.
   */
  *paths(f: number): Generator<readonly (readonly [number, boolean])[]> {
    if (f === 0) return;
    const path: [number, boolean][] = [];
    const stack: { n: number; depth: number; lit?: [number, boolean] }[] = [{ n: f, depth: 0 }];
    while (stack.length > 0) {
      const top = stack.pop()!;
      path.length = top.depth;
      if (top.lit) path.push(top.lit);
      const n = top.n;
      if (n === 0) continue;
      if (n === 1) {
        yield path.slice();
        continue;
      }
      const v = this.nodes[n * 3]!;
      const d = path.length;
      stack.push({ n: this.nodes[n * 3 + 2]!, depth: d, lit: [v, true] });
      stack.push({ n: this.nodes[n * 3 + 1]!, depth: d, lit: [v, false] });
    }
  }

  /** Evaluates f under an assignment (missing variables read as false). */
  evaluate(f: number, value: (v: number) => boolean): boolean {
    let n = f;
    while (n > 1) n = value(this.nodes[n * 3]!) ? this.nodes[n * 3 + 2]! : this.nodes[n * 3 + 1]!;
    return n === 1;
  }
}

const SHIFTS: bigint[] = [];

/** BigInt(k), made once per k. */
function shiftBy(k: number): bigint {
  let s = SHIFTS[k];
  if (s === undefined) {
    for (let i = SHIFTS.length; i <= k; i++) SHIFTS.push(BigInt(i));
    s = SHIFTS[k]!;
  }
  return s;
}

/** Pairs (set, cube) of a PairUnion, interned, with their results per node of x (of the current call). */
interface PairList {
  readonly a: number[];
  readonly c: number[];
  /** The topmost variable any pair's set or cube tests. */
  readonly minVar: number;
  /** Whether every pair tests it. */
  readonly all: boolean;
  memo: Map<number, number>;
  call: number;
  parts?: { readonly at: PairList; readonly below: PairList };
  kids?: PairKids;
}

/** A list of at most this many pairs is walked pair by pair (andRestrict), not split further. */
const FEW_PAIRS = 8;

/** The memo of a list not walked in the current call (never written: a walk gives the list its own first). */
const EMPTY_MEMO: Map<number, number> = new Map();

/** A list split at its variable: pairs of the low and high branch, walked with x's low (0) or high (1) branch. */
interface PairKids {
  readonly lo0: PairList | undefined;
  readonly lo1: PairList | undefined;
  readonly hi0: PairList | undefined;
  readonly hi1: PairList | undefined;
}

/**
 * Many (set, cube) pairs against one x at a time: of(x) is the union over the pairs of andRestrict(set, x, cube), in
 * one walk of x. The pairs are kept in lists grouped by the topmost variable they test; where x branches above a
 * list's variables, the list goes down both branches of x whole, with a memo per list and node of x, so x's
 * structure above the pairs' variables is walked once per list, not once per pair (pulling a set back through a
 * stage's thousands of dnat flows walked it once per flow, and the union of the parts walked it again). A list's
 * split at its own variable (each pair's set and cube take their branch) is computed once, for every x asked.
 * Only between safe points, and until the next collection (it holds node numbers).
 */
export class PairUnion {
  private readonly interned = new Map<number, PairList[]>();
  private readonly root: PairList | undefined;
  private call = 0;
  readonly epoch: number;

  constructor(
    private readonly b: Bdd,
    as: readonly number[],
    cubes: readonly number[],
    /** Lists of at most this many pairs are walked pair by pair. */
    private readonly few: number,
  ) {
    this.epoch = b.gcEpoch;
    const a0: number[] = [];
    const c0: number[] = [];
    for (let i = 0; i < as.length; i++) {
      if (as[i] === 0) continue;
      a0.push(as[i]!);
      c0.push(cubes[i]!);
    }
    this.root = this.list(a0, c0);
  }

  of(x: number): number {
    if (this.b.gcEpoch !== this.epoch)
      throw new Error('internal error: a PairUnion was used after a garbage collection');
    this.call++;
    try {
      return this.walk(this.root, x);
    } finally {
      // The memos only serve this call: let them go (they held a node per list and node of x walked).
      for (const l of this.touched) l.memo = EMPTY_MEMO;
      this.touched.length = 0;
    }
  }

  private readonly touched: PairList[] = [];

  private intern(a: number[], c: number[]): PairList {
    let h = a.length;
    for (let i = 0; i < a.length; i++) h = hash3(h, a[i]!, c[i]!);
    const same = this.interned.get(h);
    if (same) {
      for (const l of same) {
        if (l.a.length !== a.length) continue;
        let eq = true;
        for (let i = 0; i < a.length && eq; i++) eq = l.a[i] === a[i] && l.c[i] === c[i];
        if (eq) return l;
      }
    }
    const b = this.b;
    let minVar = TERMINAL_VAR;
    let atMin = 0;
    for (let i = 0; i < a.length; i++) {
      const v = Math.min(b.varOf(a[i]!), b.varOf(c[i]!));
      if (v < minVar) {
        minVar = v;
        atMin = 1;
      } else if (v === minVar) atMin++;
    }
    const l: PairList = { a, c, minVar, all: atMin === a.length, memo: EMPTY_MEMO, call: 0 };
    if (same) same.push(l);
    else this.interned.set(h, [l]);
    return l;
  }

  private list(a: number[], c: number[]): PairList | undefined {
    return a.length === 0 ? undefined : this.intern(a, c);
  }

  /** The pairs testing the list's variable, and the others (a mixed list is walked as the two). */
  private partition(l: PairList): { readonly at: PairList; readonly below: PairList } {
    if (l.parts) return l.parts;
    const b = this.b;
    const atA: number[] = [];
    const atC: number[] = [];
    const belowA: number[] = [];
    const belowC: number[] = [];
    for (let i = 0; i < l.a.length; i++) {
      const a = l.a[i]!;
      const c = l.c[i]!;
      const top = b.varOf(a) === l.minVar || b.varOf(c) === l.minVar;
      (top ? atA : belowA).push(a);
      (top ? atC : belowC).push(c);
    }
    l.parts = { at: this.intern(atA, atC), below: this.intern(belowA, belowC) };
    return l.parts;
  }

  /** Every pair tests v = l.minVar: each set takes its branch; x its branch, or the value the cube fixes. */
  private split(l: PairList): PairKids {
    if (l.kids) return l.kids;
    const b = this.b;
    const v = l.minVar;
    const lo0: [number[], number[]] = [[], []];
    const lo1: [number[], number[]] = [[], []];
    const hi0: [number[], number[]] = [[], []];
    const hi1: [number[], number[]] = [[], []];
    const put = (to: [number[], number[]], a: number, c: number) => {
      if (a === 0) return;
      to[0].push(a);
      to[1].push(c);
    };
    for (let i = 0; i < l.a.length; i++) {
      const a = l.a[i]!;
      const c = l.c[i]!;
      const branches = b.varOf(a) === v;
      const aLo = branches ? b.low(a) : a;
      const aHi = branches ? b.high(a) : a;
      if (b.varOf(c) === v) {
        // The cube fixes v: x takes that branch on both sides of a.
        const positive = b.low(c) === 0;
        const rest = positive ? b.high(c) : b.low(c);
        put(positive ? lo1 : lo0, aLo, rest);
        put(positive ? hi1 : hi0, aHi, rest);
      } else {
        put(lo0, aLo, c);
        put(hi1, aHi, c);
      }
    }
    l.kids = {
      lo0: this.list(lo0[0], lo0[1]),
      lo1: this.list(lo1[0], lo1[1]),
      hi0: this.list(hi0[0], hi0[1]),
      hi1: this.list(hi1[0], hi1[1]),
    };
    return l.kids;
  }

  private walk(l: PairList | undefined, x: number): number {
    if (l === undefined || x === 0) return 0;
    const b = this.b;
    if (x === 1) return b.orAll(l.a);
    // A few pairs: their own walks (and andRestrict's cache) cost less than splitting the list further.
    if (l.a.length <= this.few) {
      if (l.a.length === 1) return b.andRestrict(l.a[0]!, x, l.c[0]!);
      const parts: number[] = [];
      for (let i = 0; i < l.a.length; i++) parts.push(b.andRestrict(l.a[i]!, x, l.c[i]!));
      return b.orAll(parts);
    }
    if (l.call !== this.call) {
      l.call = this.call;
      l.memo = new Map();
      this.touched.push(l);
    }
    const memo = l.memo.get(x);
    if (memo !== undefined) return memo;
    const vx = b.varOf(x);
    let r: number;
    if (vx < l.minVar) {
      // x alone branches here: the same pairs down both branches.
      r = b.mk(vx, this.walk(l, b.low(x)), this.walk(l, b.high(x)));
    } else if (!l.all) {
      const p = this.partition(l);
      r = b.or(this.walk(p.at, x), this.walk(p.below, x));
    } else {
      const v = l.minVar;
      const x0 = vx === v ? b.low(x) : x;
      const x1 = vx === v ? b.high(x) : x;
      const k = this.split(l);
      const lo = b.or(this.walk(k.lo0, x0), this.walk(k.lo1, x1));
      const hi = b.or(this.walk(k.hi1, x1), this.walk(k.hi0, x0));
      r = b.mk(v, lo, hi);
    }
    l.memo.set(x, r);
    return r;
  }
}

function hash3(a: number, b: number, c: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}
