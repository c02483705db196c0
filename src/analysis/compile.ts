/**
 * Compiles a ruleset, for one hook path, into verdict sets over a packet space: symbolic execution of the tracer
 * (src/firewall/tracer.ts is the reference semantics and this file mirrors it step by step).
 *
 * How it works:
 * - Packets of each family run through their own list of stages (one per base chain, or one per nat core entry),
 *   ordered as the tracer orders them. A stage starts from the set of packet states that reach it.
 * - Inside a stage, a flow is a set of packets (in the terms of the stage entry) with a transformation: the header
 *   rewrites done so far (mark set, dnat, snat), as constant assignments or flips of BDD variables. A rule's match is
 *   tested on a flow by pulling the match back through the transformation (cofactor), so sets stay in entry terms and
 *   one flow per distinct rewrite is enough. Without rewrites there is one flow and each rule costs an and and a diff.
 * - At a stage boundary the accepted flows are mapped forward (their image: the packet states that reach the next
 *   stage). Final sets are pulled back through the stages to the original packets only when asked for.
 * - Opaque matches get a fresh BDD variable each. A packet is certainly decided v when it is for every value of them;
 *   otherwise it is uncertain. Rewrites the model cannot compute exactly (a dnat map or range, redirect outside
 *   output) and queue also make the affected packets uncertain (`forced`).
 */
import { UserError } from '../errors.js';
import { devices, hookEntries } from '../firewall/hook-order.js';
import type {
  Chain,
  Field,
  FinalVerdict,
  L3,
  Match,
  NatVerdict,
  Rule,
  Ruleset,
  SimpleVerdict,
  Table,
} from '../firewall/model.js';
import { CT_STATES, PORT_PROTOCOLS } from '../firewall/model.js';
import { ADDR_TYPES } from '../firewall/symbols.js';
import type { TraceHook } from '../firewall/tracer.js';
// The engine adds the same implied matches as the tracer: one definition, so they cannot drift apart.
import { hookPath, MAX_JUMP_DEPTH, rejectDependencies } from '../firewall/tracer.js';
import type { Bdd, PairUnion } from './bdd.js';
import { jumpTargets, ruleContentKey } from './content-key.js';
import type { BddPacketSpace } from './packet-space.js';
import { BddPacketSet, createPacketSpace } from './packet-space.js';
import type { CompiledRuleset, Decider, Decision, PacketSet, PolicyRef, RuleRef } from './types.js';

export interface CompileOptions {
  readonly hook: TraceHook;
  /** The space to build sets in (shared by every ruleset compared with this one). Default: one for this ruleset. */
  readonly space?: BddPacketSpace;
  /** Compile the named hook alone instead of the whole path through it (as `trace --only`). */
  readonly only?: boolean;
  /**
   * Only the packets of this set (of `space`): every set the compiled ruleset hands out is cut to it, and packets
   * outside it are neither accepted, dropped nor uncertain (incremental.ts compares two versions this way, inside
   * the region their changed rules can match). Default: every packet.
   */
  readonly region?: PacketSet;
  /** The region as a union of these sets (each rule's match, say): rules that miss all of them are skipped cheaply. */
  readonly regionParts?: readonly PacketSet[];
  /**
   * Called as rules are walked for the first time: how many of the ruleset's rules have been (rules off the hook's
   * path are never walked, so `walked` may stop short of `total`). For progress lines; no clock is read here.
   */
  readonly onProgress?: (walked: number, total: number) => void;
  /**
   * `main` (default): a stateful opaque match whose outcome for an ordinary new connection from a fresh source is
   * known (a rate limit, a recent list, a dynamic set, conntrack status, a TCP option) takes that outcome, as the
   * tracer's main verdict does; only matches with no known outcome stay opaque (uncertain). `all`: every opaque match
   * may go either way, so the certain verdicts hold under a flood and any history too.
   */
  readonly assume?: 'main' | 'all';
  /**
   * Runs of user and base chains to reuse (createChainMemo over the same space): a chain whose rules and callees
   * have the same content as one run before, entered by the same flows under the same conditions, is not walked
   * again; its recorded effects are replayed. The two versions of a diff share one, and so do the hooks of a plan.
   */
  readonly memo?: ChainMemo;
  /**
   * Runs of terminal rules walked as one block (walkBlock): `auto` (default) where walking them one by one proves
   * costly, `always` wherever a block may be walked, `never` (the answers are the same: for tests and benchmarks).
   */
  readonly blocks?: 'auto' | 'always' | 'never';
}

// ---------------------------------------------------------------------------------------------------------------
// Transformations

/** Rewrites of packet variables: 0/1 = set to a constant, 2 = negated. */
class Xform {
  private cubeNode = -1;
  private flipNode = -1;
  private assignedNode = -1;
  /** The manager's collection count when the nodes above were made (a collection may have freed them). */
  private epoch = -1;
  constructor(
    readonly lits: ReadonlyMap<number, 0 | 1 | 2>,
    /** The rewrite is not exactly known: the packets' verdicts are uncertain. */
    readonly approx: boolean,
    readonly key: string,
  ) {}

  static readonly identity = new Xform(new Map(), false, '');

  static of(lits: Map<number, 0 | 1 | 2>, approx: boolean): Xform {
    if (lits.size === 0 && !approx) return Xform.identity;
    const key = `${approx ? '~' : ''}${[...lits]
      .sort((a, b) => a[0] - b[0])
      .map(([v, x]) => `${v}:${x}`)
      .join(',')}`;
    return new Xform(lits, approx, key);
  }

  get isIdentity(): boolean {
    return this.lits.size === 0;
  }

  /** This, then `next`. */
  andThen(next: Xform): Xform {
    if (next === Xform.identity) return this;
    if (this === Xform.identity) return next;
    const lits = new Map(this.lits);
    for (const [v, x] of next.lits) {
      if (x !== 2) lits.set(v, x);
      else {
        const prev = lits.get(v);
        if (prev === undefined) lits.set(v, 2);
        else if (prev === 2) lits.delete(v);
        else lits.set(v, prev === 0 ? 1 : 0);
      }
    }
    return Xform.of(lits, this.approx || next.approx);
  }

  withApprox(): Xform {
    return this.approx ? this : Xform.of(new Map(this.lits), true);
  }

  private nodes(b: Bdd): void {
    if (this.cubeNode >= 0 && this.epoch === b.gcEpoch) return;
    this.epoch = b.gcEpoch;
    const assigned: [number, boolean][] = [];
    const flips: number[] = [];
    for (const [v, x] of this.lits) {
      if (x === 2) flips.push(v);
      else assigned.push([v, x === 1]);
    }
    this.cubeNode = b.cube(assigned);
    this.flipNode = b.varSet(flips);
    this.assignedNode = b.varSet(assigned.map((a) => a[0]));
  }

  /** The states before the rewrite whose rewritten state is in m. */
  inverse(b: Bdd, m: number): number {
    if (this.isIdentity || m < 2) return m;
    this.nodes(b);
    return b.flip(b.restrict(m, this.cubeNode), this.flipNode);
  }

  /** a and inverse(m), without building inverse(m) when the rewrite only assigns constants. */
  andInverse(b: Bdd, a: number, m: number): number {
    if (this.isIdentity) return b.and(a, m);
    this.nodes(b);
    if (this.flipNode !== 1) return b.and(a, this.inverse(b, m));
    return b.andRestrict(a, m, this.cubeNode);
  }

  /**
   * The cube of assigned values when the rewrite only assigns constants (andInverse(a, m) is then
   * andRestrict(a, m, cube); 1 for the identity), or undefined when it negates some variable.
   */
  assignCube(b: Bdd): number | undefined {
    if (this.isIdentity) return 1;
    this.nodes(b);
    return this.flipNode === 1 ? this.cubeNode : undefined;
  }

  /** The rewritten states of s. */
  image(b: Bdd, s: number): number {
    if (this.isIdentity || s === 0) return s;
    this.nodes(b);
    return b.and(b.flip(b.exists(s, this.assignedNode), this.flipNode), this.cubeNode);
  }
}

interface Flow {
  readonly t: Xform;
  readonly s: number;
  /** Accepted by a nat statement (later nat chains of the same hook are skipped). */
  readonly nat?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Region hulls

const HULL_FIELDS: readonly Field[] = ['ip.saddr', 'ip.daddr', 'dport', 'sport', 'l4proto', 'ip6.saddr', 'ip6.daddr'];

/**
 * The region as a few boxes (per box, the values each address, port and protocol field takes in one part of it): a
 * rule with a field match whose values miss a box's cannot match a packet of that part; when that holds for every
 * box the rule is skipped without building its match.
 */
class RegionHull {
  private constructor(private readonly boxes: readonly ReadonlyMap<Field, readonly (readonly [bigint, bigint])[]>[]) {}

  static of(space: BddPacketSpace, parts: readonly number[]): RegionHull {
    const boxes = parts.map((part) => {
      const set = space.wrap(part);
      const fields = new Map<Field, [bigint, bigint][]>();
      for (const f of HULL_FIELDS) {
        const ivs = space.fieldValues(set, f, 64);
        if (!ivs) continue;
        ivs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        fields.set(f, ivs);
      }
      return fields;
    });
    return new RegionHull(boxes);
  }

  /** Whether the rule misses every box. */
  misses(rule: Rule): boolean {
    for (const box of this.boxes) if (!missesBox(box, rule)) return false;
    return true;
  }
}

/** User chains at least this long get an interface box when entered (interfaceBox). */
const IFACE_BOX_MIN = 32;

/**
 * Whether some field match of the rule takes none of the box's values of its field. With `atomOf`, an interface
 * name (not a wildcard) is its atom's code, as the packet space encodes it.
 */
function missesBox(
  box: ReadonlyMap<Field, readonly (readonly [bigint, bigint])[]>,
  rule: Rule,
  atomOf?: (name: string) => number,
): boolean {
  for (const m of rule.matches) {
    if (m.kind !== 'field' || m.op !== 'eq' || m.mask !== undefined) continue;
    const ivs = box.get(m.field);
    if (!ivs) continue;
    let meets = false;
    for (const e of m.values) {
      if (e.kind === 'name' && !e.wildcard && atomOf) {
        const a = BigInt(atomOf(e.value));
        if (overlaps(ivs, a, a)) {
          meets = true;
          break;
        }
        continue;
      }
      if (e.kind !== 'range' || overlaps(ivs, e.lo, e.hi)) {
        meets = true;
        break;
      }
    }
    if (!meets) return true;
  }
  return false;
}

/** Whether [lo, hi] meets one of the sorted intervals. */
function overlaps(ivs: readonly (readonly [bigint, bigint])[], lo: bigint, hi: bigint): boolean {
  // The first interval whose end is >= lo.
  let a = 0;
  let z = ivs.length;
  while (a < z) {
    const mid = (a + z) >> 1;
    if (ivs[mid]![1] < lo) a = mid + 1;
    else z = mid;
  }
  return a < ivs.length && ivs[a]![0] <= hi;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-rule bookkeeping

/** Flows at a rule, with the absent fields of the hook they were tested on (what the rule's match depends on). */
interface CtxFlow {
  readonly f: Flow;
  readonly absent: ReadonlySet<Field>;
  readonly absentKey: string;
}

/**
 * Arriving packets are kept for every CHECKPOINT-th rule of a chain only (and its first rule): the sets before
 * every rule were most of the live nodes (about 80% at 10k rules). The others are replayed from the checkpoint
 * before them on demand, which gives the same nodes (the diagrams are canonical).
 */
const CHECKPOINT = 16;

interface RuleInfo {
  readonly ref: RuleRef;
  readonly chain: Chain;
  /** Index of the rule in its chain. */
  readonly idx: number;
  /** Checkpoint rules: (transformation, set) pairs in stage-entry terms: arriving packets, per call. */
  readonly arriving: CtxFlow[];
  /** jump/goto/vmap rules: the flows that went on after the rule (returned from the called chain), per call. */
  readonly cont: CtxFlow[];
  readonly hits: Flow[];
  opaqueVars?: number[];
  /** A stateful match does not hold for a fresh source (assume 'main'): the rule matches nothing. */
  never?: boolean;
  /** Match node per absent-field key. */
  /**
   * The absent-field sets the rule was tested with (by key); only the last match built is kept (a rule is
   * tested with one set of absent fields unless its chain is reached from several hooks).
   */
  readonly match: Map<string, ReadonlySet<Field>>;
  lastMatch?: { readonly key: string; readonly node: number };
  vmapKeys?: Map<string, number[]>;
  /** Walked at least once (progress counts each rule once). */
  walked?: boolean;
  /** The blocks the rule was walked in (walkBlock), as member k of each. */
  blocks?: { readonly block: Block; readonly k: number }[];
  /** Checkpoint rules walked in a block: their arriving packets, computed from the block when asked. */
  blockArriving?: {
    readonly block: Block;
    readonly k: number;
    readonly absent: ReadonlySet<Field>;
    readonly absentKey: string;
  }[];
}

interface DecRec {
  readonly decider: Decider;
  readonly verdict: FinalVerdict | 'accept-event';
  readonly nodes: number[];
  /** A block of rules deciding as one (walkBlock): its members' shares are computed when asked. */
  readonly block?: BlockUse;
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks of terminal rules

/**
 * A run of rules of a chain walked as one (walkBlock; memberVerdict says which rules may be members). First match
 * over members lo..hi-1 is five sets: the packets some member stops (m), and those the first matching member
 * accepts, drops, rejects and rewrites (nat). Two halves combine as m = m1 | m2, a = a1 | (a2 - m1), and so on:
 * built by halving, each member's match is joined log2(n) times and no set per member is made.
 */
interface BlockNode {
  readonly lo: number;
  readonly hi: number;
  /** A leaf's match (what it hits); m is that of the packets it stops (none for a member that lets them go on). */
  readonly h?: number;
  readonly m: number;
  readonly a: number;
  readonly d: number;
  readonly r: number;
  /** The packets the first matching member rewrites (nat). */
  readonly n: number;
  readonly left?: BlockNode;
  readonly right?: BlockNode;
}

/**
 * A block as walked on one entry set: member k is the chain's rule from + k. It holds node numbers of one packet
 * space only, and no rule record, so a chain memo replays it onto a chain of the same content in another ruleset.
 */
interface Block {
  readonly id: number;
  readonly from: number;
  /** Per member: what it does to the packets it takes (`none`: they go on unchanged, or it never matches). */
  readonly verdicts: readonly MemberVerdict[];
  /** The nat verdict of the nat members (one per block). */
  readonly nat?: NatVerdict;
  /** The packets entering the block (one identity flow, in stage-entry terms). */
  readonly entry: number;
  readonly tree: BlockNode;
  /** The members a packet reaches (the walk stops after the member that decides the last entering packet). */
  readonly reached: number;
  /** What passes the block, and the members after the last one that stops packets (they all see that set). */
  readonly rest: number;
  readonly lastStop: number;
  /** Per member: 1 hit, 0 not, -1 not known yet. */
  readonly hit: Int8Array;
}

/** A block in one compilation: its members' records. */
interface BlockUse {
  readonly block: Block;
  readonly members: readonly RuleInfo[];
}

let nextBlockId = 0;

/** A block is walked only when this many terminal rules follow each other... */
const BLOCK_MIN_RULES = 16;
/**
 * ...and the last BLOCK_WINDOW rules walked made at least this many nodes each on average. Rule by rule, each
 * rule's hits and the rest after it copy the entering set's diagram when the rule tests a field below those the
 * set is built on: ufw's `-s X -j DROP` rules above its port rules made compile quadratic (bench/RESULTS.md, fifth
 * session, section 3: 1,900 nodes per rule at 4k rules and growing, where the linear shapes make 150-350).
 */
const BLOCK_MIN_MADE = 2000;
const BLOCK_WINDOW = 16;
/**
 * ...or BLOCK_MIN_MADE_OFTEN each in a chain walked for the BLOCK_MIN_WALKS-th time or more in this compilation:
 * every walk repeats the splits. Docker's DOCKER-ISOLATION-STAGE-2 (a DROP per bridge) is entered once per bridge;
 * its rules make ~20 nodes each in a full compilation, ~250 inside the region of an incremental diff, whose
 * interface structure the flows carry and each split copies (bench/RESULTS.md, eighth session).
 */
const BLOCK_MIN_WALKS = 16;
const BLOCK_MIN_MADE_OFTEN = 100;

/**
 * A block holds at most this many rules; a longer run is walked as several, each deciding again whether it pays. The
 * trigger reads a window's mean, which one costly rule can lift: the adversarial shape's INPUT at 100k rules crossed
 * it once and walked its remaining 88,105 rules as one block (compile 11.9 -> 26.7 s, 41M nodes where rule by rule
 * keeps 11M, no collection inside a block); in blocks of at most 1,024 the window falls back under the trigger after
 * five (12.5 s). Docker's DOCKER chain at 10k (one run of 3,035) walks three blocks instead of one at the same cost.
 */
export const BLOCK_MAX_RULES = 1024;

/** Where the block starting at rule ri ends (exclusive): its run's end, or BLOCK_MAX_RULES on. */
function blockEnd(runs: BlockRuns, ri: number): number {
  return Math.min(runs.ends[ri]!, ri + BLOCK_MAX_RULES);
}

/** s less each of the left halves' matches passed on the way down a block's tree to a member. */
function lessAll(b: Bdd, s: number, before: readonly number[]): number {
  // Smallest first: the unions nearest the member are the smallest.
  for (let j = before.length - 1; j >= 0 && s !== 0; j--) s = b.diff(s, before[j]!);
  return s;
}

function markBlock(mark: (n: number) => void, block: Block): void {
  mark(block.entry);
  mark(block.rest);
  const visit = (n: BlockNode): void => {
    mark(n.m);
    mark(n.a);
    mark(n.d);
    mark(n.r);
    mark(n.n);
    if (n.left) visit(n.left);
    if (n.right) visit(n.right);
  };
  visit(block.tree);
}

/** Whether every packet a rule hits goes on unchanged: no verdict (or continue), no mark set. */
function passesThrough(rule: Rule): boolean {
  const v = rule.verdict;
  if (v && v.kind !== 'continue') return false;
  return !rule.statements.some((st) => st.kind === 'set' && st.field === 'mark');
}

type MemberVerdict = 'accept' | 'drop' | 'reject' | 'nat' | 'none';

/** Where blockable runs of a chain end, per rule. */
interface BlockRuns {
  readonly ends: Int32Array;
}

/** What a nat verdict does to packets (its text aside). */
const natKey = (v: NatVerdict) =>
  `${v.type}|${v.family ?? ''}|${v.addr ? `${v.addr.lo}-${v.addr.hi}` : ''}|${v.port ? `${v.port.lo}-${v.port.hi}` : ''}`;

/**
 * What a rule does as a block member, or undefined when it cannot be one: a final verdict, or `none` for a rule
 * that lets what it hits go on unchanged, or never matches (`recent --update` for a fresh source: ufw's limit
 * rules). A stateful match must have a known outcome for a fresh source, assumed (`assumeFresh`).
 */
function memberVerdict(rule: Rule, assumeFresh: boolean): MemberVerdict | undefined {
  for (const m of rule.matches) {
    if (m.kind !== 'opaque') continue;
    if (!assumeFresh || m.fresh === undefined) return undefined;
    if (!m.fresh) return 'none';
  }
  if (passesThrough(rule)) return 'none';
  if (rule.statements.some((st) => st.kind === 'set' && st.field === 'mark')) return undefined;
  const v = rule.verdict;
  // A nat rule rewrites what it hits and ends the chain for it; one to an address or port its rule's own opaque
  // variable does not know cannot be a member.
  if (v?.kind === 'nat') return (v.type === 'dnat' || v.type === 'snat') && !v.addr && !v.port ? undefined : 'nat';
  const k = v?.kind;
  return k === 'accept' || k === 'drop' || k === 'reject' ? k : undefined;
}

interface Stage {
  readonly family: L3;
  readonly hook: TraceHook;
  /** Decisions in stage-entry terms, by decider key. */
  readonly decisions: Map<string, DecRec>;
  /**
   * Per decider key, the order in which the walk first recorded it: a block records its members' decisions as one,
   * and decisions() lists deciders in the order walking the rules one by one records them.
   */
  readonly ranks: Map<string, number>;
  /** Packets (entry terms) whose verdict the model cannot know exactly. */
  readonly forced: number[];
  /** What leaves the stage (to the next one). */
  outputs: Flow[];
}

// ---------------------------------------------------------------------------------------------------------------
// Chain memo

/**
 * One effect of a chain's run on the compiler's records. Rules are named by their index in the chain, so a run
 * recorded on one version of a ruleset replays onto a chain of the same content in another.
 */
type Effect =
  | { readonly k: 'walk'; readonly idx: number }
  | { readonly k: 'arriving'; readonly idx: number; readonly flows: readonly Flow[] }
  | { readonly k: 'match'; readonly idx: number; readonly vars: readonly number[]; readonly never: boolean }
  | { readonly k: 'hits'; readonly idx: number; readonly flows: readonly Flow[]; readonly opaque: boolean }
  | { readonly k: 'cont'; readonly idx: number; readonly flows: readonly Flow[] }
  | {
      readonly k: 'decide';
      readonly idx: number;
      readonly verdict: FinalVerdict | 'accept-event';
      readonly flows: readonly Flow[];
    }
  | { readonly k: 'forced'; readonly nodes: readonly number[] }
  | { readonly k: 'block'; readonly block: Block }
  | { readonly k: 'call'; readonly target: string; readonly run: ChainRun };

/** A chain's run on some flows: what it did to the records, and what it returned and accepted. */
interface ChainRun {
  readonly input: readonly Flow[];
  readonly effects: readonly Effect[];
  readonly result: ChainResult;
}

/** Effects being recorded for one chain run; `ok` false when a callee could not be recorded (nothing is kept). */
interface Recorder {
  readonly effects: Effect[];
  ok: boolean;
}

/**
 * Chain runs kept for reuse across compilations in one packet space (see CompileOptions.memo). Sets are canonical
 * in a space, so a chain of the same content entered by the same nodes under the same conditions does exactly what
 * it did before: its run is a function of (content, entry flows, hook, absent fields, stateful assumption, region).
 * Every node a kept run holds is a root of the space's collections, so a node number in a key is never reused.
 */
export class ChainMemo {
  readonly runs = new Map<string, ChainRun>();
  /** Runs replayed instead of walked (for tests and benchmarks). */
  replays = 0;
  private readonly ids = new Map<string, number>();
  private readonly keys = new WeakMap<Chain, { readonly id: number; readonly dnat: boolean } | null>();
  private readonly byName = new WeakMap<Table, Map<string, Chain>>();

  constructor(readonly space: BddPacketSpace) {
    space.bdd.addRoots((mark) => {
      const flows = (fs: readonly Flow[]) => {
        for (const f of fs) mark(f.s);
      };
      for (const r of this.runs.values()) {
        flows(r.input);
        flows(r.result.returned);
        flows(r.result.accepted);
        for (const e of r.effects) {
          if (e.k === 'forced') for (const n of e.nodes) mark(n);
          else if (e.k === 'block') markBlock(mark, e.block);
          else if (e.k !== 'walk' && e.k !== 'match' && e.k !== 'call') flows(e.flows);
        }
      }
    });
  }

  /**
   * The chain's content with its callees' (by name, in its table), as a small number, and whether a dnat to an
   * address runs in it (its rewrite depends on whether the path forwards). null: a jump loop (not memoised).
   */
  chainKey(table: Table, chain: Chain): { readonly id: number; readonly dnat: boolean } | null {
    const known = this.keys.get(chain);
    if (known !== undefined) return known;
    let names = this.byName.get(table);
    if (!names) {
      names = new Map();
      for (const c of table.chains) if (!names.has(c.name)) names.set(c.name, c);
      this.byName.set(table, names);
    }
    const visiting = new Set<Chain>();
    const visit = (c: Chain): { readonly id: number; readonly dnat: boolean } | null => {
      const k = this.keys.get(c);
      if (k !== undefined) return k;
      if (visiting.has(c)) return null;
      visiting.add(c);
      const parts: string[] = [`${table.family}|${table.name}|${c.name}`];
      let dnat = false;
      let loop = false;
      for (const rule of c.rules) {
        parts.push(ruleContentKey(rule));
        const v = rule.verdict;
        if (v?.kind === 'nat' && v.type === 'dnat' && v.addr) dnat = true;
        for (const t of jumpTargets(rule)) {
          const callee = names!.get(t);
          const sub = callee ? visit(callee) : undefined;
          if (sub === null) loop = true;
          else if (sub) {
            parts.push(`>${t}=${sub.id}`);
            dnat ||= sub.dnat;
          } else parts.push(`>${t}=?`);
        }
      }
      visiting.delete(c);
      if (loop) {
        // Not kept: a chain on the loop may key differently when entered from elsewhere on it.
        return null;
      }
      const text = parts.join('\n');
      let id = this.ids.get(text);
      if (id === undefined) {
        id = this.ids.size;
        this.ids.set(text, id);
      }
      const out = { id, dnat };
      this.keys.set(c, out);
      return out;
    };
    const out = visit(chain);
    if (out === null) this.keys.set(chain, null);
    return out;
  }
}

/** A memo of chain runs for compilations in `space` (CompileOptions.memo). */
export function createChainMemo(space: BddPacketSpace): ChainMemo {
  return new ChainMemo(space);
}

const sameVars = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---------------------------------------------------------------------------------------------------------------
// The compiler

interface ChainCtx {
  readonly table: Table;
  readonly hook: TraceHook;
  readonly absent: ReadonlySet<Field>;
  readonly absentKey: string;
  readonly stage: Stage;
}

interface ChainResult {
  readonly returned: Flow[];
  readonly accepted: Flow[];
}

class Compiler {
  readonly b: Bdd;
  readonly infos = new Map<Rule, RuleInfo>();
  readonly order: RuleRef[] = [];
  readonly index = new Map<RuleRef, number>();
  readonly stagesByFamily = new Map<L3, Stage[]>();
  private readonly chainMaps = new Map<Table, Map<string, Chain>>();
  readonly hooks: readonly TraceHook[];
  private readonly enums: number;
  /** Flows held by the chains being run (callers suspended in a jump) and by run(): roots for collections. */
  private readonly frames: { lists: (readonly Flow[])[]; nodes: number[] }[] = [];

  onProgress?: (walked: number, total: number) => void;
  totalRules = 0;
  private walked = 0;

  constructor(
    readonly space: BddPacketSpace,
    readonly rs: Ruleset,
    readonly askedHook: TraceHook,
    only: boolean,
    /** The packets compiled (the universe unless a region was asked for). */
    readonly region: number,
    regionParts: readonly number[] | undefined,
    /** Stateful matches take their outcome for a fresh source (CompileOptions.assume 'main'). */
    private readonly assumeFresh = true,
    private readonly memo?: ChainMemo,
    private readonly blockMode: 'auto' | 'always' | 'never' = 'auto',
  ) {
    this.b = space.bdd;
    this.regionKey = `${region}/${regionParts?.join(',') ?? ''}`;
    this.hooks = hookPath(askedHook, only);
    this.enums = space.enumValidity();
    this.b.addRoots((mark) => this.markRoots(mark));
    if (region !== space.universe) this.hull = RegionHull.of(space, regionParts ?? [region]);
  }

  /** The region's values per field (a region compile only). */
  private readonly hull?: RegionHull;
  /** The region in a chain memo's keys. */
  private readonly regionKey: string;
  /** The effects of the chain run being recorded for the memo (undefined: none is). */
  private rec: Recorder | undefined = undefined;

  private natSets?: { readonly ports: number; readonly local: number; readonly fam: readonly number[] };
  /** The packets (stage-entry terms) that reached a rule with an opaque match, with their stage. */
  readonly opaqueHits: { readonly stage: Stage; readonly s: number }[] = [];

  /** Every node the compilation holds (a root provider for the manager's collections). */
  markRoots(mark: (n: number) => void): void {
    mark(this.enums);
    for (const h of this.opaqueHits) mark(h.s);
    mark(this.region);
    if (this.natSets) {
      mark(this.natSets.ports);
      mark(this.natSets.local);
      for (const n of this.natSets.fam) mark(n);
    }
    const flows = (fs: readonly Flow[]) => {
      for (const f of fs) mark(f.s);
    };
    for (const info of this.infos.values()) {
      for (const x of info.arriving) mark(x.f.s);
      for (const x of info.cont) mark(x.f.s);
      if (info.lastMatch) mark(info.lastMatch.node);
      flows(info.hits);
      if (info.vmapKeys) for (const ks of info.vmapKeys.values()) for (const n of ks) mark(n);
    }
    for (const stages of this.stagesByFamily.values()) {
      for (const st of stages) {
        for (const rec of st.decisions.values()) for (const n of rec.nodes) mark(n);
        for (const n of st.forced) mark(n);
        flows(st.outputs);
      }
    }
    for (const fr of this.frames) {
      for (const l of fr.lists) flows(l);
      for (const n of fr.nodes) mark(n);
    }
    for (const u of this.blockUses) markBlock(mark, u.block);
    for (const n of this.blockArrivals.values()) mark(n);
  }

  /** The blocks walked or replayed in this compilation. */
  readonly blockUses: BlockUse[] = [];
  /** Arriving packets of block members, by `${block id}:${member}` (computed when asked). */
  private readonly blockArrivals = new Map<string, number>();

  chainByName(table: Table, name: string): Chain | undefined {
    let m = this.chainMaps.get(table);
    if (!m) {
      m = new Map();
      for (const c of table.chains) if (!m.has(c.name)) m.set(c.name, c);
      this.chainMaps.set(table, m);
    }
    return m.get(name);
  }

  /** Registers the rules reachable from a base chain, in evaluation order. */
  private register(table: Table, base: Chain): void {
    const seen = new Set<Chain>();
    const visit = (chain: Chain): void => {
      if (seen.has(chain)) return;
      seen.add(chain);
      chain.rules.forEach((rule, i) => {
        if (!this.infos.has(rule)) {
          const ref: RuleRef = {
            kind: 'rule',
            family: table.family,
            table: table.name,
            chain: chain.name,
            position: i + 1,
            rule,
          };
          this.infos.set(rule, { ref, chain, idx: i, arriving: [], cont: [], hits: [], match: new Map() });
          this.index.set(ref, this.order.length);
          this.order.push(ref);
        }
        const v = rule.verdict;
        const targets: string[] = [];
        if (v?.kind === 'jump' || v?.kind === 'goto') targets.push(v.target);
        if (v?.kind === 'vmap') {
          for (const e of v.entries) {
            if (e.verdict.kind === 'jump' || e.verdict.kind === 'goto') targets.push(e.verdict.target);
          }
        }
        for (const t of targets) {
          const c = this.chainByName(table, t);
          if (c) visit(c);
        }
      });
    };
    visit(base);
  }

  run(): void {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const stages: Stage[] = [];
      this.stagesByFamily.set(family, stages);
      const top = { lists: [] as (readonly Flow[])[], nodes: [] as number[] };
      this.frames.push(top);
      // Internal sets leave the absent-field constraints out (every match tests presence itself, so the values of
      // absent fields never matter; a non-empty internal set has well-formed members): sets stay short, and the
      // universe is applied to what is handed out.
      let start = this.b.and(this.space.fieldEquals('nfproto', family === 'ipv4' ? 0 : 1), this.enums);
      if (this.region !== this.space.universe) start = this.b.and(start, this.region);
      let input: Flow[] = [{ t: Xform.identity, s: start }];
      for (const hook of this.hooks) {
        const dev = devices(hook, this.hooks);
        const absent = new Set<Field>();
        if (!dev.iif) absent.add('iifname');
        if (!dev.oif) absent.add('oifname');
        const absentKey = `${dev.iif ? 'i' : ''}${dev.oif ? 'o' : ''}`;
        for (const entry of hookEntries(this.rs, hook, family)) {
          // The stage starts from the states that reach it.
          const entrySet = this.b.orAll(input.map((f) => f.t.image(this.b, f.s)));
          const stage: Stage = {
            family,
            hook,
            decisions: new Map(),
            ranks: new Map(),
            forced: [],
            outputs: [],
          };
          stages.push(stage);
          const start: Flow = { t: Xform.identity, s: entrySet };
          top.lists = [input, [start]];
          if (entry.kind === 'chain') {
            this.register(entry.base.table, entry.base.chain);
            const ctx: ChainCtx = { table: entry.base.table, hook, absent, absentKey, stage };
            stage.outputs = this.runBase(ctx, entry.base.chain, [start]).map((f) => ({ t: f.t, s: f.s }));
          } else {
            const ctNew = this.space.fieldEquals('ct.state', CT_STATES.indexOf('new'));
            let eligible: Flow[] = [{ t: Xform.identity, s: this.b.and(entrySet, ctNew) }];
            const outputs: Flow[] = [{ t: Xform.identity, s: this.b.diff(entrySet, ctNew) }];
            for (const m of entry.members) {
              top.lists = [input, [start], eligible, outputs];
              this.register(m.table, m.chain);
              const ctx: ChainCtx = { table: m.table, hook, absent, absentKey, stage };
              const out = this.runBase(ctx, m.chain, eligible);
              eligible = [];
              for (const f of out) {
                if (f.nat) outputs.push({ t: f.t, s: f.s });
                else eligible.push(f);
              }
            }
            outputs.push(...eligible);
            stage.outputs = mergeFlows(this.b, outputs);
          }
          input = stage.outputs;
        }
      }
      this.frames.pop();
    }
  }

  /** Runs a base chain; returns the accepted flows (policy accept included). */
  private runBase(ctx: ChainCtx, base: Chain, input: Flow[]): Flow[] {
    const res = this.runChain(ctx, base, input, [base.name]);
    const spec = base.base!;
    const rest = res.returned.filter((f) => f.s !== 0);
    const policy: PolicyRef = {
      kind: 'policy',
      family: ctx.table.family,
      table: ctx.table.name,
      chain: base.name,
      policy: spec.policy,
    };
    if (spec.policy === 'accept') {
      this.decide(ctx, policy, 'accept-event', rest);
      return mergeFlows(this.b, [...res.accepted, ...rest]);
    }
    this.decide(ctx, policy, 'drop', rest);
    return mergeFlows(this.b, res.accepted);
  }

  private decide(
    ctx: ChainCtx,
    decider: Decider,
    verdict: FinalVerdict | 'accept-event',
    flows: readonly Flow[],
  ): void {
    if (flows.length === 0) return;
    let key =
      decider.kind === 'rule'
        ? `r:${this.index.get(decider)}`
        : decider.kind === 'policy'
          ? `p:${decider.family}:${decider.table}:${decider.chain}`
          : 'end';
    key += `/${verdict}`;
    let rec = ctx.stage.decisions.get(key);
    if (!rec) {
      rec = { decider, verdict, nodes: [] };
      ctx.stage.decisions.set(key, rec);
      if (!ctx.stage.ranks.has(key)) ctx.stage.ranks.set(key, ctx.stage.ranks.size);
    }
    for (const f of flows) {
      if (f.s === 0) continue;
      // Decisions are about the packets as they entered the stage; the transformation is irrelevant to the verdict
      // except when it is not exactly known.
      if (f.t.approx && verdict !== 'accept-event') ctx.stage.forced.push(f.s);
      else rec.nodes.push(f.s);
    }
  }

  /** The rule's match as tested on a hook where the fields of `absent` (keyed `absentKey`) are absent. */
  ruleMatch(info: RuleInfo, absent: ReadonlySet<Field>, absentKey: string, register = true): number {
    if (register && !info.match.has(absentKey)) info.match.set(absentKey, absent);
    // The last match built (a root: rebuilding every rule's match after each collection cost more than keeping it).
    const last = info.lastMatch;
    if (last && last.key === absentKey) return last.node;
    const node = this.buildMatch(info, absent);
    info.lastMatch = { key: absentKey, node };
    return node;
  }

  private buildMatch(info: RuleInfo, absent: ReadonlySet<Field>): number {
    const rule = info.ref.rule;
    const b = this.b;
    if (!info.opaqueVars) {
      info.opaqueVars = [];
      for (const x of rule.matches) {
        if (x.kind !== 'opaque') continue;
        // A known outcome for a fresh source is a constant: the rule always or never matches on it.
        if (this.assumeFresh && x.fresh !== undefined) {
          if (!x.fresh) info.never = true;
          continue;
        }
        info.opaqueVars.push(this.space.newOpaqueVar());
      }
      const v = rule.verdict;
      if (v?.kind === 'nat' && (v.type === 'dnat' || v.type === 'snat') && !v.addr && !v.port) {
        info.opaqueVars.push(this.space.newOpaqueVar());
      }
    }
    if (info.never) return 0;
    let m = 1;
    const ms: Match[] = [...rule.matches];
    if (rule.verdict && rule.verdict.kind !== 'nat' && rule.verdict.kind !== 'vmap') {
      ms.push(...rejectDependencies(rule.verdict));
    }
    for (const x of ms) {
      if (x.kind === 'opaque') continue;
      m = b.and(m, this.space.matchNode(x, absent));
      if (m === 0) break;
    }
    if (m !== 0) for (const v of info.opaqueVars) m = b.and(m, b.ithVar(v));
    return m;
  }

  /** Runs a chain on flows: replays a memoised run of the same chain content on the same flows, or walks it. */
  private runChain(ctx: ChainCtx, chain: Chain, input: Flow[], stack: string[]): ChainResult {
    const memo = this.memo;
    if (!memo) return this.walkChain(ctx, chain, input, stack);
    const live = input.filter((f) => f.s !== 0);
    const outer = this.rec;
    const ck = memo.chainKey(ctx.table, chain);
    if (!ck) {
      if (outer) outer.ok = false;
      this.rec = undefined;
      try {
        return this.walkChain(ctx, chain, live, stack);
      } finally {
        this.rec = outer;
      }
    }
    const key = [
      ck.id,
      ctx.hook,
      ctx.absentKey,
      ck.dnat && this.hooks.includes('forward') ? 'fwd' : '',
      this.assumeFresh ? 'fresh' : 'any',
      this.regionKey,
      stack.join('>'),
      live.map((f) => `${f.nat ? 'n' : ''}${f.t.key}:${f.s}`).join(';'),
    ].join('|');
    const hit = memo.runs.get(key);
    if (hit && this.canReplay(chain, ctx.table, hit)) {
      this.replay(ctx, chain, hit);
      memo.replays++;
      outer?.effects.push({ k: 'call', target: chain.name, run: hit });
      return hit.result;
    }
    const rec: Recorder = { effects: [], ok: true };
    this.rec = rec;
    let result: ChainResult;
    try {
      result = this.walkChain(ctx, chain, live, stack);
    } finally {
      this.rec = outer;
    }
    const run: ChainRun = { input: live, effects: rec.effects, result };
    if (rec.ok && !hit) memo.runs.set(key, run);
    if (outer) {
      if (rec.ok) outer.effects.push({ k: 'call', target: chain.name, run });
      else outer.ok = false;
    }
    return result;
  }

  /**
   * Whether a recorded run can be replayed here: a rule with an opaque match takes the opaque variables it had
   * when recorded, unless this compilation already gave it others (then it is walked again).
   */
  private canReplay(chain: Chain, table: Table, run: ChainRun): boolean {
    for (const e of run.effects) {
      if (e.k === 'call') {
        const callee = this.chainByName(table, e.target);
        if (!callee || !this.canReplay(callee, table, e.run)) return false;
      } else if (e.k === 'match') {
        const info = this.infos.get(chain.rules[e.idx]!);
        if (!info) return false;
        if (info.opaqueVars !== undefined && (!sameVars(info.opaqueVars, e.vars) || (info.never ?? false) !== e.never))
          return false;
      }
    }
    return true;
  }

  /** Applies a recorded run's effects to this compilation's records, as walking the chain would have. */
  private replay(ctx: ChainCtx, chain: Chain, run: ChainRun): void {
    for (const e of run.effects) {
      if (e.k === 'call') {
        this.replay(ctx, this.chainByName(ctx.table, e.target)!, e.run);
        continue;
      }
      if (e.k === 'forced') {
        ctx.stage.forced.push(...e.nodes);
        continue;
      }
      if (e.k === 'block') {
        this.attachBlock(ctx, chain, e.block);
        continue;
      }
      const info = this.infos.get(chain.rules[e.idx]!)!;
      switch (e.k) {
        case 'walk':
          if (!info.walked && this.onProgress) {
            info.walked = true;
            this.onProgress(++this.walked, this.totalRules);
          }
          break;
        case 'arriving':
          for (const f of e.flows) info.arriving.push({ f, absent: ctx.absent, absentKey: ctx.absentKey });
          break;
        case 'match':
          if (!info.match.has(ctx.absentKey)) info.match.set(ctx.absentKey, ctx.absent);
          if (info.opaqueVars === undefined) {
            info.opaqueVars = [...e.vars];
            if (e.never) info.never = true;
          }
          break;
        case 'hits':
          info.hits.push(...e.flows);
          if (e.opaque) for (const h of e.flows) this.opaqueHits.push({ stage: ctx.stage, s: h.s });
          break;
        case 'cont':
          for (const f of e.flows) info.cont.push({ f, absent: ctx.absent, absentKey: ctx.absentKey });
          break;
        case 'decide':
          this.decide(ctx, info.ref, e.verdict, e.flows);
          break;
      }
    }
  }

  private readonly atomOf = (name: string): number => this.space.atomOf(name);

  /**
   * The interfaces the flows entering a long user chain can have, when they are few: Docker's DOCKER chain is
   * jumped to once per bridge (`-o br-X -j DOCKER`) and holds every bridge's published ports (`-o br-Y`), so each
   * entry walked every rule of every bridge with BDD operations: quadratic in the number of bridges (docker 1k rules
   * 1 s, 4k 11 s). A rule naming only other interfaces is now passed over with an interval test.
   */
  private interfaceBox(chain: Chain, flows: readonly Flow[]): Map<Field, [bigint, bigint][]> | undefined {
    if (chain.base || chain.rules.length < IFACE_BOX_MIN || flows.length === 0) return undefined;
    if (!flows.every((f) => f.t.isIdentity)) return undefined;
    const set = this.space.wrap(this.b.orAll(flows.map((f) => f.s)));
    const box = new Map<Field, [bigint, bigint][]>();
    for (const f of ['iifname', 'oifname'] as const) {
      const ivs = this.space.fieldValues(set, f, 16);
      if (!ivs) continue;
      ivs.sort((a, c) => (a[0] < c[0] ? -1 : a[0] > c[0] ? 1 : 0));
      box.set(f, ivs);
    }
    return box.size > 0 ? box : undefined;
  }

  /** Walks a chain rule by rule (recording its effects when a memo run is being recorded). */
  private walkChain(ctx: ChainCtx, chain: Chain, input: Flow[], stack: string[]): ChainResult {
    const b = this.b;
    let cur = input.filter((f) => f.s !== 0);
    const returned: Flow[] = [];
    const accepted: Flow[] = [];
    const frame = { lists: [] as (readonly Flow[])[], nodes: [] as number[] };
    this.frames.push(frame);
    const ifs = this.interfaceBox(chain, cur);
    const runs = this.blockMode === 'never' ? undefined : this.blockRuns(chain);
    const walks = (this.walksOf.get(chain) ?? 0) + 1;
    this.walksOf.set(chain, walks);
    // Nodes made by the last BLOCK_WINDOW rules walked, in a ring.
    const made = new Float64Array(BLOCK_WINDOW);
    let madeSum = 0;
    let lastMade = b.nodesMade;
    try {
      for (let ri = 0; ri < chain.rules.length; ri++) {
        const rule = chain.rules[ri]!;
        if (cur.length === 0) break;
        // A safe point: every node this compilation holds is in its rule records, stages or frames.
        frame.lists = [cur, returned, accepted];
        frame.nodes = [];
        b.maybeCollect();
        const now = b.nodesMade;
        madeSum += now - lastMade - made[ri % BLOCK_WINDOW]!;
        made[ri % BLOCK_WINDOW] = now - lastMade;
        lastMade = now;
        if (runs && this.blockHere(cur, ri, runs, ri >= BLOCK_WINDOW ? madeSum / BLOCK_WINDOW : 0, walks)) {
          const end = blockEnd(runs, ri);
          cur = this.walkBlock(ctx, chain, ri, end, cur[0]!.s, ifs, accepted);
          ri = end - 1;
          lastMade = b.nodesMade;
          continue;
        }
        const info = this.infos.get(rule)!;
        const rec = this.rec;
        rec?.effects.push({ k: 'walk', idx: info.idx });
        if (!info.walked && this.onProgress) {
          info.walked = true;
          this.onProgress(++this.walked, this.totalRules);
        }
        if (info.idx % CHECKPOINT === 0) {
          for (const f of cur) info.arriving.push({ f, absent: ctx.absent, absentKey: ctx.absentKey });
          rec?.effects.push({ k: 'arriving', idx: info.idx, flows: [...cur] });
        }
        // Compiling a small region: a rule whose values miss the region's is not even built.
        if (this.hull?.misses(rule) && cur.every((f) => f.t.isIdentity)) continue;
        const m = this.ruleMatch(info, ctx.absent, ctx.absentKey);
        rec?.effects.push({
          k: 'match',
          idx: info.idx,
          vars: [...(info.opaqueVars ?? [])],
          never: info.never ?? false,
        });
        // Its interfaces are none the flows entering the chain can have: no hit, known without a BDD operation.
        if (ifs && missesBox(ifs, rule, this.atomOf) && cur.every((f) => f.t.isIdentity)) continue;
        // A rule that lets every packet go on unchanged (no verdict, no mark set: a counter, a log, `recent --set`)
        // leaves the flows as they were: only its hits are recorded.
        const through = passesThrough(rule);
        const { hits, rest } = through ? { hits: this.hitsOf(cur, m), rest: [] } : this.split(cur, m);
        if (hits.length === 0) continue;
        info.hits.push(...hits);
        const opaque = info.opaqueVars !== undefined && info.opaqueVars.length > 0;
        if (opaque) for (const h of hits) this.opaqueHits.push({ stage: ctx.stage, s: h.s });
        rec?.effects.push({ k: 'hits', idx: info.idx, flows: hits, opaque });
        if (through) continue;
        const hitFlows = this.afterStatements(rule, hits);
        const v = rule.verdict;
        const cont: Flow[] = [];
        frame.lists = [rest, cont, hitFlows, returned, accepted];
        if (!v) {
          cont.push(...hitFlows);
        } else if (v.kind === 'nat') {
          for (const f of hitFlows) accepted.push(...this.applyNat(ctx, v, f));
        } else if (v.kind === 'vmap') {
          let keysSoFar = 0;
          const keys = this.vmapKeys(ctx, info);
          v.entries.forEach((e, i) => {
            const eff = b.diff(keys[i]!, keysSoFar);
            keysSoFar = b.or(keysSoFar, keys[i]!);
            if (eff === 0) return;
            const sub: Flow[] = [];
            for (const f of hitFlows) {
              const s = b.and(f.s, f.t.inverse(b, eff));
              if (s !== 0) sub.push({ t: f.t, s });
            }
            frame.lists = [rest, cont, hitFlows, returned, accepted, sub];
            frame.nodes = [keysSoFar];
            if (sub.length > 0) this.simple(ctx, info, e.verdict, sub, stack, cont, returned, accepted);
          });
          for (const f of hitFlows) {
            const s = b.diff(f.s, f.t.inverse(b, keysSoFar));
            if (s !== 0) cont.push({ t: f.t, s });
          }
        } else {
          this.simple(ctx, info, v, hitFlows, stack, cont, returned, accepted);
        }
        if (v && (v.kind === 'vmap' || v.kind === 'jump' || v.kind === 'goto')) {
          for (const f of cont) info.cont.push({ f, absent: ctx.absent, absentKey: ctx.absentKey });
          this.rec?.effects.push({ k: 'cont', idx: info.idx, flows: [...cont] });
        }
        cur = mergeFlows(b, [...rest, ...cont]);
      }
    } finally {
      this.frames.pop();
    }
    returned.push(...cur);
    return { returned: mergeFlows(b, returned), accepted };
  }

  /** Per rule of a chain: the end (exclusive) of the run of blockable rules it is in, or its own index. */
  private readonly runsOf = new WeakMap<Chain, BlockRuns>();
  /** Walks of each chain so far in this compilation (replays of a memo not counted). */
  private readonly walksOf = new Map<Chain, number>();

  private blockRuns(chain: Chain): BlockRuns {
    let runs = this.runsOf.get(chain);
    if (!runs) {
      const n = chain.rules.length;
      const ends = new Int32Array(n);
      let end = n;
      // The nat verdict of the run's nat members (a run holds one: its members' packets are rewritten as one).
      let nat: string | undefined;
      for (let i = n - 1; i >= 0; i--) {
        const rule = chain.rules[i]!;
        const mv = memberVerdict(rule, this.assumeFresh);
        if (!mv) {
          ends[i] = i;
          end = i;
          nat = undefined;
          continue;
        }
        if (mv === 'nat') {
          const key = natKey(rule.verdict as NatVerdict);
          if (nat !== undefined && key !== nat) end = i + 1;
          nat = key;
        }
        ends[i] = end;
      }
      runs = { ends };
      this.runsOf.set(chain, runs);
    }
    return runs;
  }

  /**
   * Whether the rules from ri to the end of their run of blockable rules are walked as a block: on one identity
   * flow, and (auto) a long run after rules that each made many nodes, or in a chain walked many times.
   */
  private blockHere(cur: readonly Flow[], ri: number, runs: BlockRuns, recentMade: number, walks: number): boolean {
    const end = blockEnd(runs, ri);
    if (end - ri < (this.blockMode === 'always' ? 2 : BLOCK_MIN_RULES)) return false;
    if (cur.length !== 1) return false;
    const f = cur[0]!;
    if (!f.t.isIdentity || f.nat) return false;
    return (
      this.blockMode === 'always' ||
      recentMade >= BLOCK_MIN_MADE ||
      (walks >= BLOCK_MIN_WALKS && recentMade >= BLOCK_MIN_MADE_OFTEN)
    );
  }

  /**
   * Walks rules from..end-1 (blockable) on the packets `entry` as one block: accepted packets go to `accepted`, the
   * block's decisions to one record, and what no member matches is returned. Records are what walking them one by
   * one would leave, made lazily: a member's hits, decisions and arriving packets are computed from the block when
   * asked (BlockUse), and the members after the one that decides the last entering packet are not walked.
   */
  private walkBlock(
    ctx: ChainCtx,
    chain: Chain,
    from: number,
    end: number,
    entry: number,
    ifs: Map<Field, [bigint, bigint][]> | undefined,
    accepted: Flow[],
  ): Flow[] {
    const b = this.b;
    const ms: number[] = [];
    const verdicts: MemberVerdict[] = [];
    const skipped: boolean[] = [];
    for (let i = from; i < end; i++) {
      const rule = chain.rules[i]!;
      const info = this.infos.get(rule)!;
      verdicts.push(memberVerdict(rule, this.assumeFresh)!);
      // As walkChain: a rule that misses a region's values is not built; one that misses the interfaces of the
      // chain's entering flows matches nothing here.
      const skip = this.hull?.misses(rule) ?? false;
      skipped.push(skip);
      let m = 0;
      if (!skip) {
        m = this.ruleMatch(info, ctx.absent, ctx.absentKey, false);
        if (ifs && missesBox(ifs, rule, this.atomOf)) m = 0;
      }
      ms.push(m);
    }
    const tree = this.blockTree(ms, verdicts, 0, ms.length);
    const rest = b.diff(entry, tree.m);
    // The members a walk reaches: all when some packet passes the block, else up to the member that takes the last.
    let reached = ms.length;
    if (rest === 0) {
      let node = tree;
      let x = entry;
      while (node.left) {
        const after = b.diff(x, node.left.m);
        if (after === 0) node = node.left;
        else {
          x = after;
          node = node.right!;
        }
      }
      reached = node.lo + 1;
    }
    let lastStop = ms.length - 1;
    while (lastStop >= 0 && (ms[lastStop] === 0 || verdicts[lastStop] === 'none')) lastStop--;
    const natAt = verdicts.indexOf('nat');
    const block: Block = {
      id: nextBlockId++,
      from,
      verdicts,
      ...(natAt >= 0 ? { nat: chain.rules[from + natAt]!.verdict as NatVerdict } : {}),
      entry,
      tree,
      reached,
      rest,
      lastStop,
      hit: new Int8Array(ms.length).fill(-1),
    };
    const rec = this.rec;
    for (let k = 0; k < reached; k++) {
      const info = this.infos.get(chain.rules[from + k]!)!;
      rec?.effects.push({ k: 'walk', idx: from + k });
      if (!info.walked && this.onProgress) {
        info.walked = true;
        this.onProgress(++this.walked, this.totalRules);
      }
      if (skipped[k]) continue;
      if (!info.match.has(ctx.absentKey)) info.match.set(ctx.absentKey, ctx.absent);
      rec?.effects.push({
        k: 'match',
        idx: from + k,
        vars: [...(info.opaqueVars ?? [])],
        never: info.never ?? false,
      });
    }
    rec?.effects.push({ k: 'block', block });
    this.attachBlock(ctx, chain, block);
    if (tree.a !== 0) {
      const a = b.and(entry, tree.a);
      if (a !== 0) accepted.push({ t: Xform.identity, s: a });
    }
    // The nat members' packets, rewritten as one (a rewrite acts on each packet alone): as walked, they are accepted
    // and the chain ends for them.
    if (tree.n !== 0 && block.nat) {
      const n = b.and(entry, tree.n);
      if (n !== 0) accepted.push(...this.applyNat(ctx, block.nat, { t: Xform.identity, s: n }));
    }
    return rest === 0 ? [] : [{ t: Xform.identity, s: rest }];
  }

  /** First match over members lo..hi-1, by halving. */
  private blockTree(ms: readonly number[], verdicts: readonly MemberVerdict[], lo: number, hi: number): BlockNode {
    const b = this.b;
    if (hi - lo === 1) {
      const h = ms[lo]!;
      const v = verdicts[lo]!;
      const m = v === 'none' ? 0 : h;
      const only = (w: MemberVerdict) => (v === w ? m : 0);
      return { lo, hi, h, m, a: only('accept'), d: only('drop'), r: only('reject'), n: only('nat') };
    }
    const mid = (lo + hi) >> 1;
    const left = this.blockTree(ms, verdicts, lo, mid);
    const right = this.blockTree(ms, verdicts, mid, hi);
    const later = (x: number, y: number) => (y === 0 ? x : b.or(x, b.diff(y, left.m)));
    return {
      lo,
      hi,
      m: b.or(left.m, right.m),
      a: later(left.a, right.a),
      d: later(left.d, right.d),
      r: later(left.r, right.r),
      n: later(left.n, right.n),
      left,
      right,
    };
  }

  /** Records a block (walked here, or replayed from a memo) on its members and its stage. */
  private attachBlock(ctx: ChainCtx, chain: Chain, block: Block): void {
    const members: RuleInfo[] = [];
    for (let k = 0; k < block.verdicts.length; k++) members.push(this.infos.get(chain.rules[block.from + k]!)!);
    for (let k = 0; k < block.reached; k++) {
      const info = members[k]!;
      info.blocks ??= [];
      info.blocks.push({ block, k });
      if (info.idx % CHECKPOINT === 0) {
        info.blockArriving ??= [];
        info.blockArriving.push({ block, k, absent: ctx.absent, absentKey: ctx.absentKey });
      }
    }
    const use: BlockUse = { block, members };
    this.blockUses.push(use);
    const key = `b:${block.id}`;
    const { a, d, r } = block.tree;
    // The members that decide, in the order a rule-by-rule walk would have recorded them.
    const ranks = ctx.stage.ranks;
    for (let k = 0; k < block.reached; k++) {
      const v = block.verdicts[k];
      if (v !== 'accept' && v !== 'drop' && v !== 'reject') continue;
      const mk = `r:${this.index.get(members[k]!.ref)}/${v === 'accept' ? 'accept-event' : v}`;
      if (!ranks.has(mk) && this.memberHit(block, k)) ranks.set(mk, ranks.size);
    }
    // Rewriting and passing decide nothing: such a block has no record of decisions.
    if ((a !== 0 || d !== 0 || r !== 0) && !ctx.stage.decisions.has(key)) {
      ctx.stage.decisions.set(key, { decider: members[0]!.ref, verdict: 'drop', nodes: [], block: use });
    }
  }

  /** The path to member k: its leaf, and the match unions of the members before it (left siblings on the way). */
  blockPath(block: Block, k: number): { leaf: BlockNode; before: number[] } {
    const before: number[] = [];
    let node = block.tree;
    while (node.left) {
      if (k < node.left.hi) node = node.left;
      else {
        before.push(node.left.m);
        node = node.right!;
      }
    }
    return { leaf: node, before };
  }

  /** Whether some packet entering the block is taken by member k (nothing built). */
  memberHit(block: Block, k: number): boolean {
    const known = block.hit[k]!;
    if (known >= 0) return known === 1;
    const { leaf, before } = this.blockPath(block, k);
    const b = this.b;
    // Cheap answers first: the entering packets miss the match, or one earlier half's matches cover it.
    const hit =
      !b.disjoint(block.entry, leaf.h!) &&
      !before.some((n) => b.implies(leaf.h!, n)) &&
      b.meetsOutside(block.entry, leaf.h!, before);
    block.hit[k] = hit ? 1 : 0;
    return hit;
  }

  /** The packets of x that member k takes: x within its match, less the matches of the members before it. */
  memberShare(block: Block, k: number, x: number): number {
    const { leaf, before } = this.blockPath(block, k);
    return this.lessBefore(this.b.and(x, leaf.h!), before);
  }

  /** s less the match unions of the members before one (blockPath's `before`). */
  private lessBefore(s: number, before: readonly number[]): number {
    return lessAll(this.b, s, before);
  }

  /** The packets entering the block that reach member k. */
  private memberArriving(block: Block, k: number): number {
    const key = `${block.id}:${k}`;
    let n = this.blockArrivals.get(key);
    if (n === undefined) {
      n = this.blockArrival(block, k, undefined);
      this.blockArrivals.set(key, n);
    }
    return n;
  }

  /** The flows' packets a match (in their rewritten terms) hits. */
  private hitsOf(flows: readonly Flow[], m: number): Flow[] {
    const b = this.b;
    const hits: Flow[] = [];
    for (const f of flows) {
      const h = b.and(f.s, f.t.inverse(b, m));
      if (h !== 0) hits.push({ t: f.t, s: h });
    }
    return hits;
  }

  /** Splits flows by a match (in their rewritten terms): the packets it hits and the rest. */
  private split(flows: readonly Flow[], m: number): { hits: Flow[]; rest: Flow[] } {
    const b = this.b;
    const hits: Flow[] = [];
    const rest: Flow[] = [];
    for (const f of flows) {
      const mt = f.t.inverse(b, m);
      const h = b.and(f.s, mt);
      if (h !== 0) {
        hits.push({ t: f.t, s: h });
        const r = b.diff(f.s, mt);
        if (r !== 0) rest.push({ t: f.t, s: r });
      } else rest.push(f);
    }
    return { hits, rest };
  }

  /** A rule's hits after its statements: they run before the verdict; only a mark change affects the traversal. */
  private afterStatements(rule: Rule, hits: Flow[]): Flow[] {
    const markX = this.markXform(rule);
    return markX ? hits.map((f) => ({ t: f.t.andThen(markX), s: f.s })) : hits;
  }

  /**
   * The flows arriving at a rule: kept for checkpoint rules, otherwise replayed from the checkpoint before it, rule
   * by rule as runChain steps (a called chain's returns are taken from what the call recorded). A block walked over
   * the checkpoint gives its packets from the block itself: those reaching a member, or those passing the block,
   * replayed from the block's end.
   */
  arrivingFlows(info: RuleInfo, within?: number): Flow[] {
    const b = this.b;
    const start = info.idx - (info.idx % CHECKPOINT);
    const from = this.infos.get(info.chain.rules[start]!)!;
    // Asked within a set (arrivingWithin): when every flow of the replay keeps its packets as they entered the stage,
    // the replay starts from the packets within it (a packet's way does not depend on the others): ufw's chain holds
    // its blocklist's rules, and the whole arriving set copies the blocklist.
    const cut = within !== undefined && this.identityReplay(from, info) ? within : undefined;
    const within_ = (f: Flow): Flow | undefined => {
      if (cut === undefined) return f;
      const s = b.and(f.s, cut);
      return s === 0 ? undefined : { ...f, s };
    };
    const out: Flow[] = [];
    // Replays grouped by where they start and by absent fields (a rule's match depends on them); flows of several
    // calls are replayed together: every step acts on each packet alone, so it commutes with the union.
    const groups = new Map<string, { at: number; absent: ReadonlySet<Field>; absentKey: string; flows: Flow[] }>();
    const add = (at: number, absent: ReadonlySet<Field>, absentKey: string, f: Flow | undefined) => {
      if (!f || f.s === 0) return;
      if (at === info.idx) {
        out.push(f);
        return;
      }
      const key = `${at}|${absentKey}`;
      const g = groups.get(key);
      if (g) g.flows.push(f);
      else groups.set(key, { at, absent, absentKey, flows: [f] });
    };
    for (const x of from.arriving) add(start, x.absent, x.absentKey, within_(x.f));
    for (const x of from.blockArriving ?? []) {
      const block = x.block;
      const end = block.from + block.verdicts.length;
      if (info.idx < end) {
        const k = info.idx - block.from;
        if (k >= block.reached) continue;
        const s = k === x.k && cut === undefined ? this.memberArriving(block, k) : this.blockArrival(block, k, cut);
        add(info.idx, x.absent, x.absentKey, { t: Xform.identity, s });
      } else {
        add(end, x.absent, x.absentKey, within_({ t: Xform.identity, s: b.diff(block.entry, block.tree.m) }));
      }
    }
    for (const g of groups.values()) {
      let cur = mergeFlows(b, g.flows);
      for (let k = g.at; k < info.idx && cur.length > 0; k++) {
        const ri = this.infos.get(info.chain.rules[k]!)!;
        if (passesThrough(ri.ref.rule)) continue;
        const m = this.ruleMatch(ri, g.absent, g.absentKey);
        const { hits, rest } = this.split(cur, m);
        if (hits.length === 0) continue;
        const v = ri.ref.rule.verdict;
        const cont: Flow[] = [];
        if (!v || v.kind === 'continue') cont.push(...this.afterStatements(ri.ref.rule, hits));
        else if (v.kind === 'vmap' || v.kind === 'jump' || v.kind === 'goto') {
          for (const x of ri.cont) {
            if (x.absentKey !== g.absentKey) continue;
            const f = within_(x.f);
            if (f) cont.push(f);
          }
        }
        cur = mergeFlows(b, [...rest, ...cont]);
      }
      out.push(...cur);
    }
    return cut === undefined ? out : mergeFlows(b, out);
  }

  /**
   * Whether the replay from checkpoint rule `from` to `info` keeps every flow's packets as they entered the stage:
   * it starts from identity flows, and no rule on the way sets a mark or continues with rewritten flows after a jump.
   */
  private identityReplay(from: RuleInfo, info: RuleInfo): boolean {
    if (!from.arriving.every((x) => x.f.t.isIdentity)) return false;
    for (let k = from.idx; k < info.idx; k++) {
      const ri = this.infos.get(info.chain.rules[k]!)!;
      const v = ri.ref.rule.verdict;
      if (!v || v.kind === 'continue') {
        if (ri.ref.rule.statements.some((st) => st.kind === 'set' && st.field === 'mark')) return false;
      } else if (v.kind === 'vmap' || v.kind === 'jump' || v.kind === 'goto') {
        if (!ri.cont.every((x) => x.f.t.isIdentity)) return false;
      }
    }
    return true;
  }

  /** The packets entering a block that reach member k (within `cut` when given). */
  private blockArrival(block: Block, k: number, cut: number | undefined): number {
    const b = this.b;
    // Past the last member that stops packets, every member sees what passes the block (ufw's limit rules end each
    // block: the unreachable analysis asks what reaches each of them).
    if (k > block.lastStop) return cut === undefined ? block.rest : b.and(block.rest, cut);
    const { before } = this.blockPath(block, k);
    return this.lessBefore(cut === undefined ? block.entry : b.and(block.entry, cut), before);
  }

  private vmapKeys(ctx: ChainCtx, info: RuleInfo): number[] {
    info.vmapKeys ??= new Map();
    let keys = info.vmapKeys.get(ctx.absentKey);
    if (!keys) {
      const v = info.ref.rule.verdict;
      if (v?.kind !== 'vmap') return [];
      const present = this.space.presentAll(v.fields, ctx.absent);
      keys = v.entries.map((e) => this.b.and(present, this.space.tuplesSet(v.fields, [e.key])));
      info.vmapKeys.set(ctx.absentKey, keys);
    }
    return keys;
  }

  /** Applies a simple verdict to the flows that chose it. */
  private simple(
    ctx: ChainCtx,
    info: RuleInfo,
    v: SimpleVerdict,
    flows: Flow[],
    stack: string[],
    cont: Flow[],
    returned: Flow[],
    accepted: Flow[],
  ): void {
    switch (v.kind) {
      case 'continue':
        cont.push(...flows);
        return;
      case 'accept':
        this.decide(ctx, info.ref, 'accept-event', flows);
        this.rec?.effects.push({ k: 'decide', idx: info.idx, verdict: 'accept-event', flows: [...flows] });
        accepted.push(...flows);
        return;
      case 'drop':
      case 'reject':
        this.decide(ctx, info.ref, v.kind, flows);
        this.rec?.effects.push({ k: 'decide', idx: info.idx, verdict: v.kind, flows: [...flows] });
        return;
      case 'queue':
        // The verdict depends on the userspace consumer: drop as the tracer says, but uncertain.
        this.decide(ctx, info.ref, 'drop', flows);
        for (const f of flows) ctx.stage.forced.push(f.s);
        this.rec?.effects.push({ k: 'decide', idx: info.idx, verdict: 'drop', flows: [...flows] });
        this.rec?.effects.push({ k: 'forced', nodes: flows.map((f) => f.s) });
        return;
      case 'return':
        returned.push(...flows);
        return;
      case 'jump':
      case 'goto': {
        const ref = info.ref;
        const target = this.chainByName(ctx.table, v.target);
        if (!target) {
          throw new UserError(
            'RAMPART_ERR_NO_CHAIN',
            `${ref.rule.origin.file}:${ref.rule.origin.line}: rule #${ref.position} in ${ref.family} ${ref.table}/${ref.chain} ${v.kind}s to chain '${v.target}', which does not exist in table ${ctx.table.family} ${ctx.table.name}`,
            { family: ctx.table.family, table: ctx.table.name, chain: ref.chain, rule: ref.position, target: v.target },
          );
        }
        if (stack.includes(v.target)) {
          throw new UserError(
            'RAMPART_ERR_LOOP',
            `${ref.rule.origin.file}:${ref.rule.origin.line}: rule #${ref.position} in ${ref.family} ${ref.table}/${ref.chain} ${v.kind}s to chain '${v.target}', which is already being traversed (loop: ${[...stack, v.target].join(' -> ')})`,
            { family: ctx.table.family, table: ctx.table.name, chain: ref.chain, rule: ref.position, target: v.target },
          );
        }
        if (stack.length > MAX_JUMP_DEPTH) {
          throw new UserError(
            'RAMPART_ERR_LOOP',
            `rule #${ref.position} in ${ref.family} ${ref.table}/${ref.chain} jumps deeper than ${MAX_JUMP_DEPTH} chains`,
            { family: ctx.table.family, table: ctx.table.name, chain: ref.chain, rule: ref.position, target: v.target },
          );
        }
        const res = this.runChain(ctx, target, flows, [...stack, v.target]);
        accepted.push(...res.accepted);
        if (v.kind === 'jump') cont.push(...res.returned);
        else returned.push(...res.returned);
        return;
      }
    }
  }

  private markXform(rule: Rule): Xform | undefined {
    let x: Xform | undefined;
    for (const st of rule.statements) {
      if (st.kind !== 'set' || st.field !== 'mark') continue;
      const mask = st.mask === undefined ? 0xffffffffn : st.mask & 0xffffffffn;
      const value = st.value & 0xffffffffn;
      const l = this.space.fieldLayout('mark');
      const lits = new Map<number, 0 | 1 | 2>();
      for (let i = 0; i < 32; i++) {
        const bit = BigInt(31 - i);
        const vb = Number((value >> bit) & 1n) as 0 | 1;
        if ((mask >> bit) & 1n) lits.set(l.first + i, vb);
        else if (vb === 1) lits.set(l.first + i, 2);
      }
      const step = Xform.of(lits, false);
      x = x ? x.andThen(step) : step;
    }
    return x;
  }

  /** The flows after a nat statement (split where the rewrite differs), as the tracer's applyNat. */
  private applyNat(ctx: ChainCtx, v: NatVerdict, f: Flow): Flow[] {
    const b = this.b;
    const sp = this.space;
    const out: Flow[] = [];
    const split = (flow: Flow, cond: number, yes: (fl: Flow) => void, no: (fl: Flow) => void): void => {
      const c = flow.t.inverse(b, cond);
      const a = b.and(flow.s, c);
      const r = b.diff(flow.s, c);
      if (a !== 0) yes({ t: flow.t, s: a });
      if (r !== 0) no({ t: flow.t, s: r });
    };
    const assign = (fl: Flow, field: Field, value: bigint): Flow => {
      const lits = new Map<number, 0 | 1 | 2>();
      for (const [vv, bit] of sp.fieldLiterals(field, value)) lits.set(vv, bit ? 1 : 0);
      return { t: fl.t.andThen(Xform.of(lits, false)), s: fl.s };
    };
    const approx = (fl: Flow): Flow => ({ t: fl.t.withApprox(), s: fl.s });
    // Built once per compilation (kube-proxy has one dnat rule per endpoint).
    this.natSets ??= {
      ports: sp.fieldIntervals(
        'l4proto',
        [...PORT_PROTOCOLS].map((p) => [BigInt(p), BigInt(p)]),
      ),
      local: sp.fieldEquals('daddr.type', ADDR_TYPES.indexOf('local')),
      fam: [b.and(sp.fieldEquals('nfproto', 0), sp.universe), b.and(sp.fieldEquals('nfproto', 1), sp.universe)],
    };
    const { ports, local } = this.natSets;
    for (const family of ['ipv4', 'ipv6'] as const) {
      const famSet = this.natSets.fam[family === 'ipv4' ? 0 : 1]!;
      const fs = b.and(f.s, f.t.inverse(b, famSet));
      if (fs === 0) continue;
      let flows: Flow[] = [{ t: f.t, s: fs }];
      if (v.family !== undefined && v.family !== family) {
        out.push(...flows);
        continue;
      }
      const ranged = (v.addr && v.addr.lo !== v.addr.hi) || (v.port && v.port.lo !== v.port.hi);
      if (ranged) flows = flows.map(approx);
      const daddr: Field = family === 'ipv4' ? 'ip.daddr' : 'ip6.daddr';
      const saddr: Field = family === 'ipv4' ? 'ip.saddr' : 'ip6.saddr';
      const max = family === 'ipv4' ? 0xffffffffn : (1n << 128n) - 1n;
      const mapFlows = (fn: (fl: Flow) => Flow[]) => {
        flows = flows.flatMap(fn);
      };
      if (v.type === 'dnat' || v.type === 'redirect') {
        if (v.type === 'redirect') {
          if (ctx.hook === 'output') {
            mapFlows((fl) => [assign(fl, daddr, family === 'ipv4' ? 0x7f000001n : 1n)]);
          } else {
            // The primary address of the input interface: not known from the ruleset.
            flows = flows.map(approx);
          }
          mapFlows((fl) => [assign(fl, 'daddr.type', BigInt(ADDR_TYPES.indexOf('local')))]);
        } else if (!v.addr && !v.port) {
          flows = flows.map(approx);
        } else if (v.addr) {
          const to = v.addr.lo;
          if (to <= max) mapFlows((fl) => [assign(fl, daddr, to)]);
          else flows = flows.map(approx);
          if (this.hooks.includes('forward')) {
            mapFlows((fl) => {
              const r: Flow[] = [];
              split(
                fl,
                local,
                (x) => r.push(assign(x, 'daddr.type', BigInt(ADDR_TYPES.indexOf('unicast')))),
                (x) => r.push(x),
              );
              return r;
            });
          }
        }
        if (v.port) {
          const port = BigInt(v.port.lo);
          mapFlows((fl) => {
            const r: Flow[] = [];
            split(
              fl,
              ports,
              (x) => r.push(assign(x, 'dport', port)),
              (x) => r.push(x),
            );
            return r;
          });
        }
      } else {
        if (v.type !== 'masquerade' && v.addr) {
          const to = v.addr.lo;
          if (to <= max) mapFlows((fl) => [assign(fl, saddr, to)]);
          else flows = flows.map(approx);
        }
        if (v.port) {
          const port = BigInt(v.port.lo);
          mapFlows((fl) => {
            const r: Flow[] = [];
            split(
              fl,
              ports,
              (x) => r.push(assign(x, 'sport', port)),
              (x) => r.push(x),
            );
            return r;
          });
        }
      }
      out.push(...flows);
    }
    return out.map((fl) => ({ t: fl.t, s: fl.s, nat: true }));
  }
}

function mergeFlows(b: Bdd, flows: readonly Flow[]): Flow[] {
  if (flows.length <= 1) return flows.filter((f) => f.s !== 0);
  const by = new Map<string, { t: Xform; nat: boolean; nodes: number[] }>();
  for (const f of flows) {
    if (f.s === 0) continue;
    const key = `${f.nat ? 'n' : ''}|${f.t.key}`;
    const g = by.get(key);
    if (g) g.nodes.push(f.s);
    else by.set(key, { t: f.t, nat: f.nat ?? false, nodes: [f.s] });
  }
  const out: Flow[] = [];
  for (const g of by.values()) {
    const s = g.nodes.length === 1 ? g.nodes[0]! : b.orAll(g.nodes);
    out.push(g.nat ? { t: g.t, s, nat: true } : { t: g.t, s });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The compiled ruleset

/** A block of deciders in decision order: a leaf holds one decider, an inner node the union of its leaves. */
interface DeciderTree {
  readonly union: number;
  readonly children?: readonly DeciderTree[];
  readonly entry?: { readonly key: string; readonly rec: DecRec };
}

const TREE_FANOUT = 8;

/** A stage's output flows as leaves, each inner node holding the union of its leaves' possible packets. */
interface FlowTree {
  readonly union: number;
  readonly children?: readonly FlowTree[];
  readonly flow?: Flow;
}
const FLAT_QUERIES = 16;

/**
 * The most assign-only flows a stage pulls back through in one PairUnion walk: measured on kube-proxy's prerouting,
 * 7,173 flows (the 10k shape's forward hook) took a plan from 40.7 to 27.2 s of CPU, and 36k flows (the 100k shape's
 * input hook) the unreachable analysis from 31 to 49 s, in the unions of partial results (bench/RESULTS.md,
 * 2026-12-06 fourth section); in between is not measured.
 */
const MAX_PAIR_UNION = 8192;

/** A root that is always entered, over the leaves themselves (a scan in order). */
function flat(leaves: DeciderTree[]): DeciderTree | undefined {
  if (leaves.length === 0) return undefined;
  return { union: 1, children: leaves };
}

class Compiled implements CompiledBddRuleset {
  private readonly b: Bdd;
  private verdicts?: Map<FinalVerdict, number>;
  private uncertainNode?: number;
  private readonly pulled = new Map<string, number>();

  constructor(
    readonly ruleset: Ruleset,
    readonly hook: TraceHook,
    readonly space: BddPacketSpace,
    private readonly c: Compiler,
  ) {
    this.b = space.bdd;
    this.b.addRoots((mark) => {
      if (this.verdicts) for (const n of this.verdicts.values()) mark(n);
      if (this.uncertainNode !== undefined) mark(this.uncertainNode);
      if (this.pathEndNode !== undefined) mark(this.pathEndNode);
      if (this.touchedNode !== undefined && this.touchedNode >= 0) mark(this.touchedNode);
      for (const n of this.pulled.values()) mark(n);
      for (const n of this.possible.values()) mark(n);
      for (const n of this.rawRecs.values()) mark(n);
      for (const u of this.blockUnions.values()) {
        mark(u.raw);
        mark(u.final);
        mark(u.accept);
      }
      for (const n of this.pulledBlockUnions.values()) mark(n);
      for (const n of this.pulledRecs.values()) mark(n);
      const tree = (t: DeciderTree | undefined): void => {
        if (!t) return;
        mark(t.union);
        for (const ch of t.children ?? []) tree(ch);
      };
      for (const t of this.decTrees.values()) tree(t);
      for (const t of this.decTreesP.values()) tree(t);
      for (const t of this.accTreesP.values()) tree(t);
      const flows = (t: FlowTree | undefined): void => {
        if (!t) return;
        mark(t.union);
        for (const ch of t.children ?? []) flows(ch);
      };
      for (const t of this.flowTrees.values()) flows(t);
      for (const t of this.accTrees.values()) tree(t);
    });
  }

  /** Pulls a set in the terms of stage i's entry back to the original packets. */
  private readonly possible = new Map<Flow, number>();

  /**
   * Pulls a set in the terms of stage i's entry back to the original packets, with the opaque variables quantified
   * away (the packets that may end there). Quantifying first keeps the sets free of opaque variables, which sit at
   * the bottom of the order: pulling a large set back through thousands of dnat flows then shares its subgraphs
   * instead of rebuilding them under each flow's opaque conditions.
   */
  /**
   * Each decider's packets in the terms of its stage's entry, opaque variables quantified away (for stage 0: the
   * original packets), computed once: decisions() is called per query.
   */
  private readonly rawRecs = new Map<DecRec, number>();

  private rawRec(rec: DecRec): number {
    let n = this.rawRecs.get(rec);
    if (n === undefined) {
      n = this.space.dropOpaque(this.b.orAll(rec.nodes));
      this.rawRecs.set(rec, n);
    }
    return n;
  }

  /**
   * A set in the terms of stage `from`'s entry carried to stage `to`'s entry: the states the stages between turn
   * them into, along the flows pull() follows back. A decider of stage i meets pull(x) within w (original packets)
   * exactly when x meets w carried from stage 0 to stage i.
   */
  private forward(stages: readonly Stage[], from: number, to: number, w: number): number {
    const b = this.b;
    for (let k = from; k < to && w !== 0; k++) {
      const parts: number[] = [];
      const x = w;
      // Only the flows that meet w (a stage can have thousands: one per dnat rule), found down a tree of unions.
      const visit = (node: FlowTree): void => {
        if (b.disjoint(node.union, x)) return;
        if (node.children) {
          for (const c of node.children) visit(c);
          return;
        }
        const f = node.flow!;
        parts.push(f.t.image(b, b.and(node.union, x)));
      };
      const tree = this.flowTree(stages[k]!);
      if (tree) visit(tree);
      w = b.orAll(parts);
    }
    return w;
  }

  /** Per stage: its assign-only flows as one PairUnion (rebuilt after a collection), and the other exact flows. */
  private readonly pullBy = new Map<Stage, { assigning: PairUnion | undefined; others: Flow[] }>();

  private pullFlows(st: Stage): { assigning: PairUnion | undefined; others: Flow[] } {
    const got = this.pullBy.get(st);
    if (got && (!got.assigning || got.assigning.epoch === this.b.gcEpoch)) return got;
    const exact = st.outputs.filter((f) => !f.t.approx);
    const cubes = exact.map((f) => f.t.assignCube(this.b));
    const n = cubes.filter((c) => c !== undefined).length;
    // One or two flows: andRestrict's own cache does as well. Past MAX_PAIR_UNION flows the walk's unions of partial
    // results cost more than the walks they save.
    if (n <= 2 || n > MAX_PAIR_UNION) {
      const r = { assigning: undefined, others: exact };
      this.pullBy.set(st, r);
      return r;
    }
    const assigning = this.b.pairUnion(
      exact.flatMap((f, i) => (cubes[i] === undefined ? [] : [this.possibleOf(f)])),
      cubes.filter((c): c is number => c !== undefined),
    );
    const r = { assigning, others: exact.filter((_, i) => cubes[i] === undefined) };
    this.pullBy.set(st, r);
    return r;
  }

  /** A stage's exactly known outputs as leaves (each its possible packets) under unions of eight. */
  private readonly flowTrees = new Map<Stage, FlowTree | undefined>();

  private flowTree(st: Stage): FlowTree | undefined {
    if (this.flowTrees.has(st)) return this.flowTrees.get(st);
    const b = this.b;
    let layer: FlowTree[] = st.outputs.filter((f) => !f.t.approx).map((f) => ({ union: this.possibleOf(f), flow: f }));
    while (layer.length > 1) {
      const up: FlowTree[] = [];
      for (let k = 0; k < layer.length; k += TREE_FANOUT) {
        const children = layer.slice(k, k + TREE_FANOUT);
        up.push({ union: b.orAll(children.map((c) => c.union)), children });
      }
      layer = up;
    }
    const tree = layer[0];
    this.flowTrees.set(st, tree);
    return tree;
  }

  /**
   * A later stage's decider pulled back to original packets, once, when a query first meets it (every decider
   * pulled up front cost more than the queries of a whole reach or diff on kube-proxy and Docker hosts).
   */
  private readonly pulledRecs = new Map<DecRec, number>();

  private pulledRec(stages: readonly Stage[], i: number, rec: DecRec): number {
    let n = this.pulledRecs.get(rec);
    if (n === undefined) {
      n = this.pull(stages, i, this.rawRec(rec));
      this.pulledRecs.set(rec, n);
    }
    return n;
  }

  private possibleOf(f: Flow): number {
    let pf = this.possible.get(f);
    if (pf === undefined) {
      pf = this.space.dropOpaque(f.s);
      this.possible.set(f, pf);
    }
    return pf;
  }

  private pull(stages: readonly Stage[], i: number, x: number): number {
    const b = this.b;
    x = this.space.dropOpaque(x);
    for (let k = i - 1; k >= 0 && x !== 0; k--) {
      const parts: number[] = [];
      // Flows that assign constants (dnat, mark set, none) are pulled in one walk of x; the rest one by one.
      const st = stages[k]!;
      const { assigning, others } = this.pullFlows(st);
      for (const f of others) {
        const p = f.t.andInverse(b, this.possibleOf(f), x);
        if (p !== 0) parts.push(p);
      }
      if (assigning) parts.push(assigning.of(x));
      x = b.orAll(parts);
    }
    return x;
  }

  /**
   * Every packet has exactly one outcome for each value of the opaque variables, so a packet is certainly v exactly
   * when it may end in v and may end in nothing else.
   */
  private compute(): void {
    if (this.verdicts) return;
    const b = this.b;
    const sp = this.space;
    const raw = new Map<FinalVerdict, number[]>([
      ['accept', []],
      ['drop', []],
      ['reject', []],
    ]);
    const forced: number[] = [];
    for (const [family, stages] of this.c.stagesByFamily) {
      stages.forEach((st, i) => {
        // Stage 0's deciders are kept one by one (decisions() reuses them); a later stage's are pulled back through
        // the stages before it once per verdict, not once per decider: pulling distributes over unions, and
        // thousands of dnat flows made a pull per decider the cost of every query (kube-proxy, Docker).
        const later = new Map<FinalVerdict, number[]>();
        for (const rec of st.decisions.values()) {
          if (rec.block) {
            const { entry, tree } = rec.block.block;
            for (const [v, n] of [
              ['drop', tree.d],
              ['reject', tree.r],
            ] as const) {
              const x = b.and(entry, n);
              if (i === 0) raw.get(v)!.push(this.space.dropOpaque(x));
              else if (later.has(v)) later.get(v)!.push(x);
              else later.set(v, [x]);
            }
            continue;
          }
          if (rec.verdict === 'accept-event') continue;
          if (i === 0) raw.get(rec.verdict)!.push(this.rawRec(rec));
          else {
            const list = later.get(rec.verdict);
            if (list) list.push(...rec.nodes);
            else later.set(rec.verdict, [...rec.nodes]);
          }
        }
        for (const [v, nodes] of later) raw.get(v)!.push(this.pull(stages, i, b.orAll(nodes)));
        if (st.forced.length > 0) forced.push(this.pull(stages, i, b.orAll(st.forced)));
        const approxOut = st.outputs.filter((f) => f.t.approx).map((f) => f.s);
        if (approxOut.length > 0) forced.push(this.pull(stages, i, b.orAll(approxOut)));
      });
      const famSet = b.and(sp.fieldEquals('nfproto', family === 'ipv4' ? 0 : 1), this.c.region);
      raw.get('accept')!.push(stages.length === 0 ? famSet : this.pull(stages, stages.length, 1));
    }
    const possible = new Map<FinalVerdict, number>();
    for (const [v, nodes] of raw) possible.set(v, b.orAll(nodes));
    const f = b.orAll(forced);
    const verdicts = new Map<FinalVerdict, number>();
    let certain = 0;
    for (const [v, n] of possible) {
      let c = b.and(n, this.c.region);
      for (const [w, m] of possible) if (w !== v) c = b.diff(c, m);
      c = b.diff(c, f);
      verdicts.set(v, c);
      certain = b.or(certain, c);
    }
    this.verdicts = verdicts;
    this.uncertainNode = b.diff(this.c.region, certain);
  }

  verdict(verdict: FinalVerdict): BddPacketSet {
    this.compute();
    return this.space.wrap(this.verdicts!.get(verdict) ?? 0);
  }

  uncertain(): BddPacketSet {
    this.compute();
    return this.space.wrap(this.uncertainNode!);
  }

  uncertainWithin(packets: PacketSet): BddPacketSet {
    const p = (packets as BddPacketSet).node;
    const t = this.touched();
    if (t !== undefined && this.b.disjoint(p, t)) return this.space.none();
    return this.space.wrap(this.b.and(p, this.uncertain().node));
  }

  /**
   * The packets that may meet an opaque match (a superset of uncertain(): a packet that never does has one
   * outcome), when that is cheap to know: every opaque rule in the first stage of its family and no inexact rewrite
   * or queue anywhere. Then a query that misses it needs no verdict sets (the unreachable analysis asks thousands).
   */
  private touched(): number | undefined {
    if (this.touchedNode !== undefined) return this.touchedNode === -1 ? undefined : this.touchedNode;
    let ok = true;
    for (const stages of this.c.stagesByFamily.values()) {
      for (const st of stages) if (st.forced.length > 0 || st.outputs.some((f) => f.t.approx)) ok = false;
    }
    const first = new Set<Stage>();
    for (const stages of this.c.stagesByFamily.values()) if (stages[0]) first.add(stages[0]);
    for (const h of this.c.opaqueHits) if (!first.has(h.stage)) ok = false;
    this.touchedNode = ok ? this.space.dropOpaque(this.b.orAll(this.c.opaqueHits.map((h) => h.s))) : -1;
    return ok ? this.touchedNode : undefined;
  }

  private touchedNode?: number;

  rules(): readonly RuleRef[] {
    return this.c.order;
  }

  private info(rule: RuleRef) {
    const i = this.c.infos.get(rule.rule);
    if (!i) throw new Error(`rule ${rule.chain}#${rule.position} is not on this hook path`);
    return i;
  }

  private imageOf(key: string, flows: readonly Flow[]): number {
    let n = this.pulled.get(key);
    if (n === undefined) {
      const b = this.b;
      n = b.and(
        this.space.dropOpaque(b.orAll(mergeFlows(b, flows).map((f) => f.t.image(b, f.s)))),
        this.space.universe,
      );
      this.pulled.set(key, n);
    }
    return n;
  }

  arriving(rule: RuleRef): BddPacketSet {
    const i = this.info(rule);
    return this.space.wrap(this.imageOf(`a:${this.c.index.get(i.ref)}`, this.c.arrivingFlows(i)));
  }

  /**
   * arriving(rule) and `within`, without building the whole arriving set: each flow is cut to the part whose image
   * lies in `within` before its image is taken (image(s) and w = image(s and inverse(w))), so the opaque variables
   * are quantified out of a small set instead of a chain's whole entry set. `within` must not depend on opaque
   * variables (every set handed out by this space is free of them).
   */
  arrivingWithin(rule: RuleRef, within: PacketSet): BddPacketSet {
    const i = this.info(rule);
    const b = this.b;
    const w = (within as BddPacketSet).node;
    if (w === 0) return this.space.none();
    const cached = this.pulled.get(`a:${this.c.index.get(i.ref)}`);
    if (cached !== undefined) return this.space.wrap(b.and(cached, w));
    const parts: number[] = [];
    for (const f of this.c.arrivingFlows(i, w)) {
      const s = b.and(f.s, f.t.inverse(b, w));
      if (s !== 0) parts.push(f.t.image(b, s));
    }
    return this.space.wrap(b.and(this.space.dropOpaque(b.orAll(parts)), w));
  }

  matchSet(rule: RuleRef): BddPacketSet {
    const i = this.info(rule);
    const b = this.b;
    // The match as seen on the asked hook (interfaces present as there).
    const nodes = [...i.match].map(([absentKey, absent]) => this.c.ruleMatch(i, absent, absentKey));
    const m = nodes.length > 0 ? b.orAll(nodes) : this.fallbackMatch(i);
    return this.space.wrap(b.and(this.space.dropOpaque(m), this.space.universe));
  }

  private fallbackMatch(i: RuleInfo): number {
    let m = 1;
    for (const x of i.ref.rule.matches) if (x.kind !== 'opaque') m = this.b.and(m, this.space.matchNode(x));
    return m;
  }

  hits(rule: RuleRef): BddPacketSet {
    const i = this.info(rule);
    const inBlocks = (i.blocks ?? []).filter((x) => this.c.memberHit(x.block, x.k));
    if (i.hits.length === 0 && inBlocks.length === 0) return this.space.none();
    // Every recorded hit is non-empty: emptiness is known without building the image.
    return new BddPacketSet(
      this.space,
      () =>
        this.imageOf(`h:${this.c.index.get(i.ref)}`, [
          ...i.hits,
          ...inBlocks.map((x) => ({ t: Xform.identity, s: this.c.memberShare(x.block, x.k, x.block.entry) })),
        ]),
      true,
    );
  }

  /** Whether the rule is on this compilation's path (a region compile never registers chains no flow enters). */
  knows(rule: RuleRef): boolean {
    return this.c.infos.has(rule.rule);
  }

  /** Whether some packet reaches the rule and matches it (cheaper than hits(rule).isEmpty() when false). */
  isHit(rule: RuleRef): boolean {
    const i = this.info(rule);
    return i.hits.length > 0 || (i.blocks?.some((x) => this.c.memberHit(x.block, x.k)) ?? false);
  }

  /** Per stage: its final deciders (accept-events aside), and its accept-events. */
  private readonly decTrees = new Map<Stage, DeciderTree | undefined>();
  private readonly accTrees = new Map<Stage, DeciderTree | undefined>();
  private readonly decLeaves = new Map<Stage, DeciderTree[]>();
  private readonly accLeaves = new Map<Stage, DeciderTree[]>();
  /** The same for later stages with every decider pulled back to original packets (many queries). */
  private readonly decTreesP = new Map<Stage, DeciderTree | undefined>();
  private readonly accTreesP = new Map<Stage, DeciderTree | undefined>();
  private readonly decLeavesP = new Map<Stage, DeciderTree[]>();
  private readonly accLeavesP = new Map<Stage, DeciderTree[]>();
  /** decisions() calls so far: the first few scan the deciders instead of building the trees. */
  private queries = 0;

  /**
   * A stage's deciders as leaves of a tree in the order decisions() credits them, each inner node holding the union
   * of its leaves' packets (stage-entry terms): decisions() prunes whole blocks with it. The unions cost about as
   * much as a few hundred scans (10k deciders), so the first FLAT_QUERIES queries get a flat root over the leaves
   * instead: a diff or a reach asks a handful of questions, the unreachable analysis thousands.
   */
  private treeOf(
    trees: Map<Stage, DeciderTree | undefined>,
    leavesOf: Map<Stage, DeciderTree[]>,
    st: Stage,
    accept: boolean,
    union: (rec: DecRec) => number,
    blockUnion: (rec: DecRec, accept: boolean) => number,
  ): DeciderTree | undefined {
    if (trees.has(st)) return trees.get(st);
    let leaves = leavesOf.get(st);
    if (!leaves) {
      leaves = [];
      // Accept-events latest first (a later chain's accept is the one the tracer reports); the others in order.
      const recs = accept ? [...st.decisions].reverse() : [...st.decisions];
      for (const [key, rec] of recs) {
        if (rec.block) {
          const u = blockUnion(rec, accept);
          if (u !== 0) leaves.push({ union: u, entry: { key, rec } });
        } else if ((rec.verdict === 'accept-event') === accept) leaves.push({ union: union(rec), entry: { key, rec } });
      }
      leavesOf.set(st, leaves);
    }
    if (this.queries <= FLAT_QUERIES) return flat(leaves);
    const tree = this.buildTree(leaves);
    trees.set(st, tree);
    return tree;
  }

  /** A block's entering packets, opaque variables quantified away, and what it decides finally / accepts within them. */
  private readonly blockUnions = new Map<DecRec, { raw: number; final: number; accept: number }>();

  private blockUnionsOf(rec: DecRec): { raw: number; final: number; accept: number } {
    let u = this.blockUnions.get(rec);
    if (!u) {
      const b = this.b;
      const { entry, tree } = rec.block!.block;
      const raw = this.space.dropOpaque(entry);
      u = { raw, final: b.and(raw, b.or(tree.d, tree.r)), accept: b.and(raw, tree.a) };
      this.blockUnions.set(rec, u);
    }
    return u;
  }

  private blockUnion(rec: DecRec, accept: boolean): number {
    const u = this.blockUnionsOf(rec);
    return accept ? u.accept : u.final;
  }

  /** A later stage's block union pulled back to original packets (once). */
  private readonly pulledBlockUnions = new Map<string, number>();

  private pulledBlockUnion(stages: readonly Stage[], i: number, rec: DecRec, accept: boolean): number {
    const key = `${rec.block!.block.id}/${accept ? 'a' : 'f'}`;
    let n = this.pulledBlockUnions.get(key);
    if (n === undefined) {
      n = this.pull(stages, i, this.blockUnion(rec, accept));
      this.pulledBlockUnions.set(key, n);
    }
    return n;
  }

  private blockEntryRaw(rec: DecRec): number {
    return this.blockUnionsOf(rec).raw;
  }

  /**
   * The members' shares of x (within the block's entering packets, opaque variables quantified away) in member
   * order: those that accept, or those that drop or reject. Down the block's tree, x loses each left half's matches
   * before it enters the right half, and a half whose decisions of the asked kind miss x is passed over.
   */
  private blockShares(block: Block, x: number, accept: boolean): { k: number; s: number }[] {
    const b = this.b;
    const out: { k: number; s: number }[] = [];
    // x less the left halves passed on the way down (`before`), never built: x can be large (a whole flow of
    // ufw's, which copies its blocklist) and the halves' matches small. A half is entered when some packet of x
    // outside them meets what it decides (a search that builds nothing); a member's share is x and its match less
    // them, the match cut first.
    const meets = (n: BlockNode, before: readonly number[]) =>
      accept ? b.meetsOutside(x, n.a, before) : b.meetsOutside(x, n.d, before) || b.meetsOutside(x, n.r, before);
    const go = (n: BlockNode, before: readonly number[]): void => {
      if (!meets(n, before)) return;
      if (!n.left) {
        const s = b.and(x, lessAll(b, n.m, before));
        if (s !== 0) out.push({ k: n.lo, s });
        return;
      }
      go(n.left, before);
      go(n.right!, [...before, n.left.m]);
    };
    if (x !== 0) go(block.tree, []);
    return out;
  }

  private buildTree(leaves: DeciderTree[]): DeciderTree | undefined {
    const b = this.b;
    let layer = leaves;
    while (layer.length > 1) {
      const up: DeciderTree[] = [];
      for (let k = 0; k < layer.length; k += TREE_FANOUT) {
        const children = layer.slice(k, k + TREE_FANOUT);
        up.push({ union: b.orAll(children.map((c) => c.union)), children });
      }
      layer = up;
    }
    return layer[0];
  }

  private pathEndNode?: number;

  pathEnd(): BddPacketSet {
    if (this.pathEndNode === undefined) {
      const b = this.b;
      const region = this.c.region;
      // As decisions(): the certain packets, less every packet some decider (a final verdict or an accept-event)
      // may decide. Certain packets have one outcome, so "may be decided" is "is decided". A later stage's deciders
      // are pulled back as one union (pulling distributes over unions).
      const t = this.touched();
      let left = t !== undefined && b.disjoint(region, t) ? region : b.diff(region, this.uncertain().node);
      for (const stages of this.c.stagesByFamily.values()) {
        stages.forEach((st, i) => {
          if (left === 0) return;
          const nodes: number[] = [];
          for (const rec of st.decisions.values()) {
            if (rec.block) {
              const t = rec.block.block.tree;
              nodes.push(b.and(rec.block.block.entry, b.or(t.a, b.or(t.d, t.r))));
            } else nodes.push(...rec.nodes);
          }
          if (nodes.length === 0) return;
          const decided = i === 0 ? this.space.dropOpaque(b.orAll(nodes)) : this.pull(stages, i, b.orAll(nodes));
          left = b.diff(left, decided);
        });
      }
      this.pathEndNode = left;
    }
    return this.space.wrap(this.pathEndNode);
  }

  /**
   * The packets decisions() over every packet credits to the deciders `pick` chooses, without crediting the others.
   * A final decider's share of a whole-space query is its own (may-)decided packets within the certain ones, so
   * only the chosen deciders are touched (a blocklist's few rules of 10k: the whole-space decisions() cost ~3 s on
   * the 10k firewall). Accept-events share what earlier ones left: when one is chosen, decisions() is asked.
   */
  decidedBy(pick: (d: Decider) => boolean): BddPacketSet {
    const b = this.b;
    const chosen: { rec: DecRec; stages: readonly Stage[]; i: number }[] = [];
    const chosenMembers: { block: Block; k: number; stages: readonly Stage[]; i: number }[] = [];
    for (const stages of this.c.stagesByFamily.values()) {
      for (let i = 0; i < stages.length; i++) {
        for (const rec of stages[i]!.decisions.values()) {
          if (rec.block) {
            const { block, members } = rec.block;
            for (let k = 0; k < block.reached; k++) {
              if (!pick(members[k]!.ref)) continue;
              const v = block.verdicts[k];
              // Rewriting and passing decide nothing.
              if (v === 'none' || v === 'nat') continue;
              if (v === 'accept') return this.decidedByScan(pick);
              chosenMembers.push({ block, k, stages, i });
            }
            continue;
          }
          if (!pick(rec.decider)) continue;
          if (rec.verdict === 'accept-event') return this.decidedByScan(pick);
          chosen.push({ rec, stages, i });
        }
      }
    }
    const pathEnd = pick({ kind: 'path-end' });
    if (chosen.length === 0 && chosenMembers.length === 0 && !pathEnd) return this.space.none();
    const region = this.c.region;
    const t = this.touched();
    const within = t !== undefined && b.disjoint(region, t) ? region : b.diff(region, this.uncertain().node);
    const parts = chosen.map(({ rec, stages, i }) =>
      b.and(i === 0 ? this.rawRec(rec) : this.pulledRec(stages, i, rec), within),
    );
    for (const { block, k, stages, i } of chosenMembers) {
      const raw = this.space.dropOpaque(block.entry);
      parts.push(
        i === 0
          ? this.c.memberShare(block, k, b.and(raw, within))
          : b.and(this.pull(stages, i, this.c.memberShare(block, k, raw)), within),
      );
    }
    if (pathEnd) parts.push(this.pathEnd().node);
    return this.space.wrap(b.orAll(parts));
  }

  private decidedByScan(pick: (d: Decider) => boolean): BddPacketSet {
    let s = this.space.none();
    for (const d of this.decisions()) if (pick(d.decider)) s = s.or(d.packets as BddPacketSet);
    return s;
  }

  decisions(packets?: PacketSet): readonly Decision[] {
    this.queries++;
    const b = this.b;
    const sp = this.space;
    // The certain packets of the query. Each has exactly one final verdict, so a decider's share is its own
    // (may-)decided packets within them: no AND with the large verdict sets per query, which dominated the cost
    // of the unreachable analysis (one decisions() call per unreachable rule).
    const asked = packets ? b.and((packets as BddPacketSet).node, this.c.region) : this.c.region;
    // Uncertain packets have no single decider. A query that meets no opaque match needs no verdict sets.
    const t = this.touched();
    const within = t !== undefined && b.disjoint(asked, t) ? asked : b.diff(asked, this.uncertain().node);
    const out: Decision[] = [];
    const byDecider = new Map<string, { decider: Decider; verdict: FinalVerdict; node: number }>();
    const add = (key: string, decider: Decider, verdict: FinalVerdict, node: number) => {
      if (node === 0) return;
      const e = byDecider.get(key);
      if (e) e.node = b.or(e.node, node);
      else byDecider.set(key, { decider, verdict, node });
    };
    // A stage's shares are credited in the order the walk recorded their deciders (accept-events latest first): a
    // block's members are found where the block is.
    let pending: { key: string; decider: Decider; verdict: FinalVerdict; node: number }[] = [];
    const credit = (key: string, decider: Decider, verdict: FinalVerdict, node: number) => {
      if (node !== 0) pending.push({ key, decider, verdict, node });
    };
    const flush = (st: Stage, latestFirst: boolean) => {
      const rank = (k: string) => st.ranks.get(k) ?? Number.MAX_SAFE_INTEGER;
      pending.sort((x, y) => (latestFirst ? rank(y.key) - rank(x.key) : rank(x.key) - rank(y.key)));
      for (const p of pending) add(p.key, p.decider, p.verdict, p.node);
      pending = [];
    };
    const leaves: number[] = [];
    // A later stage's deciders are in the terms of its entry. For a few queries (a reach, a diff), each query is
    // carried forward to the stage and a decider is pulled back only when the query meets it; for many (the
    // unreachable analysis), every decider is pulled back once and queries test them directly.
    const many = this.queries > FLAT_QUERIES;
    const tree = (st: Stage, stages: readonly Stage[], i: number, accept: boolean) =>
      i === 0 || !many
        ? this.treeOf(
            accept ? this.accTrees : this.decTrees,
            accept ? this.accLeaves : this.decLeaves,
            st,
            accept,
            (r) => this.rawRec(r),
            (r, acc) => this.blockUnion(r, acc),
          )
        : this.treeOf(
            accept ? this.accTreesP : this.decTreesP,
            accept ? this.accLeavesP : this.decLeavesP,
            st,
            accept,
            (r) => this.pulledRec(stages, i, r),
            (r, acc) => this.pulledBlockUnion(stages, i, r, acc),
          );
    for (const stages of this.c.stagesByFamily.values()) {
      let w = within;
      stages.forEach((st, i) => {
        const carried = i > 0 && !many;
        // The query in the leaves' terms.
        if (carried) w = this.forward(stages, i - 1, i, w);
        const wi = carried ? w : within;
        // Walk the decider tree in order, skipping every block whose packets miss the query: a query set is
        // usually small and meets few of the thousands of deciders, so this replaces one AND per decider by a few
        // tests.
        const visit = (node: DeciderTree): void => {
          if (b.disjoint(node.union, wi)) return;
          if (node.children) {
            for (const c of node.children) visit(c);
            return;
          }
          const e = node.entry!;
          if (e.rec.block) {
            const { block, members } = e.rec.block;
            // The query in the stage's entry terms (carried there unless it is the first stage); each member's share
            // is pulled back to original packets.
            const x = i === 0 ? within : carried ? wi : this.forward(stages, 0, i, within);
            for (const { k, s } of this.blockShares(block, b.and(x, this.blockEntryRaw(e.rec)), false)) {
              // Shares of drop and reject members only (blockShares passes over the others).
              const v = block.verdicts[k] as 'drop' | 'reject';
              const n = i === 0 ? s : b.and(this.pull(stages, i, s), within);
              if (n === 0) continue;
              leaves.push(n);
              credit(`r:${this.c.index.get(members[k]!.ref)}/${v}`, members[k]!.ref, v, n);
            }
            return;
          }
          const n = b.and(carried ? this.pulledRec(stages, i, e.rec) : node.union, within);
          if (n === 0) return;
          leaves.push(n);
          credit(e.key, e.rec.decider, e.rec.verdict as FinalVerdict, n);
        };
        const t = tree(st, stages, i, false);
        if (t) visit(t);
        flush(st, false);
      });
    }
    // Main-tree deciders drop or reject (accepts are accept-events): the rest of the query is accepted.
    let acceptLeft = b.diff(within, b.orAll(leaves));
    for (const stages of this.c.stagesByFamily.values()) {
      // Accepts: the last accepting base chain on the asked hook, else the last one traversed (as the tracer).
      const indexed = stages.map((st, i) => ({ st, i })).reverse();
      const order = [
        ...indexed.filter((x) => x.st.hook === this.hook),
        ...indexed.filter((x) => x.st.hook !== this.hook),
      ];
      for (const { st, i } of order) {
        if (acceptLeft === 0) break;
        // acceptLeft only shrinks, so a block disjoint from it (or, carried, from what it was carried to when the
        // stage's walk began) stays without a share.
        const carried = i > 0 && !many;
        const wi = carried ? this.forward(stages, 0, i, acceptLeft) : 0;
        const visit = (node: DeciderTree): void => {
          if (acceptLeft === 0 || b.disjoint(node.union, carried ? wi : acceptLeft)) return;
          if (node.children) {
            for (const c of node.children) visit(c);
            return;
          }
          const e = node.entry!;
          if (e.rec.block) {
            const { members } = e.rec.block;
            const x = i === 0 ? acceptLeft : carried ? wi : this.forward(stages, 0, i, acceptLeft);
            const shares = this.blockShares(e.rec.block.block, b.and(x, this.blockEntryRaw(e.rec)), true);
            const ns: number[] = [];
            // Latest first, as the accept-events' records.
            for (let j = shares.length - 1; j >= 0; j--) {
              const ref = members[shares[j]!.k]!.ref;
              const s = shares[j]!.s;
              const n = i === 0 ? s : b.and(this.pull(stages, i, s), acceptLeft);
              ns.push(n);
              credit(`r:${this.c.index.get(ref)}/accept-event`, ref, 'accept', n);
            }
            acceptLeft = b.diff(acceptLeft, b.orAll(ns));
            return;
          }
          const n = b.and(carried ? this.pulledRec(stages, i, e.rec) : node.union, acceptLeft);
          credit(e.key, e.rec.decider, 'accept', n);
          acceptLeft = b.diff(acceptLeft, n);
        };
        const t = tree(st, stages, i, true);
        if (t) visit(t);
        flush(st, true);
      }
    }
    if (acceptLeft !== 0) add('end', { kind: 'path-end' }, 'accept', acceptLeft);
    for (const e of byDecider.values()) out.push({ decider: e.decider, verdict: e.verdict, packets: sp.wrap(e.node) });
    return out;
  }
}

/** A compiled ruleset whose sets are BDD-backed (the concrete type compileRuleset returns). */
export interface CompiledBddRuleset extends CompiledRuleset {
  readonly space: BddPacketSpace;
  verdict(verdict: FinalVerdict): BddPacketSet;
  uncertain(): BddPacketSet;
  uncertainWithin(packets: PacketSet): BddPacketSet;
  arriving(rule: RuleRef): BddPacketSet;
  /** arriving(rule) and `within`, computed without the whole arriving set. */
  arrivingWithin(rule: RuleRef, within: PacketSet): BddPacketSet;
  matchSet(rule: RuleRef): BddPacketSet;
  hits(rule: RuleRef): BddPacketSet;
  /** Whether some packet reaches the rule and matches it (no set built). */
  isHit(rule: RuleRef): boolean;
  decidedBy(pick: (d: Decider) => boolean): BddPacketSet;
}

/**
 * The ruleset compiled with `assume: 'all'`, given its default compilation `main` (same ruleset, hook and space).
 *
 * The two differ only for the packets that reach a stateful match with a known fresh-source outcome: before the first
 * such rule both walk the same flows, and a packet that no such rule could match goes the same way through each (by
 * induction over the rules in order). When every such match holds for a fresh source (`limit rate`, `ct count`
 * under its limit: the main compilation lets the rule match) and nothing rewrites packets (no nat, no mark set: every
 * set is in original-packet terms), that region is the union of those rules' hits in `main`. Then only the region is
 * compiled again, and every answer is `main`'s outside it and the region compilation's inside it: on the 10k
 * firewall (one `icmp type echo-request limit rate` rule) this replaces a 3 s compilation of 10k rules by one of the
 * ICMP echo requests. Otherwise, the whole ruleset is compiled again.
 */
export function compileAnyState(
  ruleset: Ruleset,
  main: CompiledBddRuleset,
  opts: { readonly memo?: ChainMemo } = {},
): CompiledBddRuleset {
  const { space, hook } = main;
  const full = () => compileRuleset(ruleset, { hook, space, assume: 'all', ...(opts.memo ? { memo: opts.memo } : {}) });
  if (!dependsOnState(ruleset)) return main;
  if (!(main instanceof Compiled)) return full();
  for (const t of ruleset.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) {
        if (r.verdict?.kind === 'nat' || r.statements.some((st) => st.kind === 'set' && st.field === 'mark')) {
          return full();
        }
        for (const m of r.matches) if (m.kind === 'opaque' && m.fresh === false) return full();
      }
    }
  }
  const parts: PacketSet[] = [];
  for (const ref of main.rules()) {
    if (ref.rule.matches.some((m) => m.kind === 'opaque' && m.fresh !== undefined) && main.isHit(ref)) {
      parts.push(main.hits(ref));
    }
  }
  if (parts.length === 0) return main;
  const region = space.wrap(space.bdd.orAll(parts.map((x) => (x as BddPacketSet).node)));
  const inside = compileRuleset(ruleset, {
    hook,
    space,
    assume: 'all',
    region,
    ...(opts.memo ? { memo: opts.memo } : {}),
  }) as Compiled;
  return new SplitCompiled(main, inside, region);
}

const deciderId = (d: Decider): string =>
  d.kind === 'rule'
    ? `r|${d.family}|${d.table}|${d.chain}|${d.position}`
    : d.kind === 'policy'
      ? `p|${d.family}|${d.table}|${d.chain}`
      : 'end';

/** Answers of `outside` outside `region` and of `inside` (a compilation of `region` only) inside it. */
class SplitCompiled implements CompiledBddRuleset {
  readonly ruleset: Ruleset;
  readonly hook: TraceHook;
  readonly space: BddPacketSpace;
  private readonly b: Bdd;
  private readonly r: number;

  constructor(
    private readonly outside: Compiled,
    private readonly inside: Compiled,
    region: BddPacketSet,
  ) {
    this.ruleset = outside.ruleset;
    this.hook = outside.hook;
    this.space = outside.space;
    this.b = this.space.bdd;
    this.r = region.node;
    this.b.addRoots((mark) => mark(this.r));
  }

  /** A set of `outside` cut to the packets outside the region, joined with one of `inside`. */
  private join(out: BddPacketSet, inn: BddPacketSet): BddPacketSet {
    return this.space.wrap(this.b.or(this.b.diff(out.node, this.r), inn.node));
  }

  private out(p: PacketSet): BddPacketSet {
    return this.space.wrap(this.b.diff((p as BddPacketSet).node, this.r));
  }

  private in(p: PacketSet): BddPacketSet {
    return this.space.wrap(this.b.and((p as BddPacketSet).node, this.r));
  }

  verdict(v: FinalVerdict): BddPacketSet {
    return this.join(this.outside.verdict(v), this.inside.verdict(v));
  }

  uncertain(): BddPacketSet {
    return this.join(this.outside.uncertain(), this.inside.uncertain());
  }

  uncertainWithin(packets: PacketSet): BddPacketSet {
    const o = this.outside.uncertainWithin(this.out(packets));
    const i = this.inside.uncertainWithin(this.in(packets));
    return this.space.wrap(this.b.or(o.node, i.node));
  }

  rules(): readonly RuleRef[] {
    return this.outside.rules();
  }

  arriving(rule: RuleRef): BddPacketSet {
    const i = this.inside.knows(rule) ? this.inside.arriving(rule) : this.space.none();
    return this.join(this.outside.arriving(rule), i);
  }

  arrivingWithin(rule: RuleRef, within: PacketSet): BddPacketSet {
    const o = this.outside.arrivingWithin(rule, this.out(within));
    const i = this.inside.knows(rule) ? this.inside.arrivingWithin(rule, this.in(within)) : this.space.none();
    return this.space.wrap(this.b.or(o.node, i.node));
  }

  matchSet(rule: RuleRef): BddPacketSet {
    // No fresh-false match (checked): a rule's match is the same under both assumptions, opaque variables aside.
    return this.outside.matchSet(rule);
  }

  hits(rule: RuleRef): BddPacketSet {
    const inside = this.inside.knows(rule) && this.inside.isHit(rule);
    // What a fresh source hits is hit under some assumption: a rule hit in `main` is hit here (no set built to
    // know it: the unreachable analysis asks every rule). One not hit in `main` is hit inside the region only.
    if (!this.outside.isHit(rule)) return inside ? this.inside.hits(rule) : this.space.none();
    return new BddPacketSet(
      this.space,
      () => this.join(this.outside.hits(rule), inside ? this.inside.hits(rule) : this.space.none()).node,
      true,
    );
  }

  isHit(rule: RuleRef): boolean {
    return this.outside.isHit(rule) || (this.inside.knows(rule) && this.inside.isHit(rule));
  }

  decisions(packets?: PacketSet): readonly Decision[] {
    const all = packets ?? this.space.all();
    const merged = new Map<string, { decider: Decider; verdict: FinalVerdict; node: number }>();
    const add = (ds: readonly Decision[]) => {
      for (const d of ds) {
        const k = `${deciderId(d.decider)}|${d.verdict}`;
        const n = (d.packets as BddPacketSet).node;
        const e = merged.get(k);
        if (e) e.node = this.b.or(e.node, n);
        else merged.set(k, { decider: d.decider, verdict: d.verdict, node: n });
      }
    };
    const o = this.out(all);
    const i = this.in(all);
    if (!o.isEmpty()) add(this.outside.decisions(o));
    if (!i.isEmpty()) add(this.inside.decisions(i));
    return [...merged.values()].map((e) => ({
      decider: e.decider,
      verdict: e.verdict,
      packets: this.space.wrap(e.node),
    }));
  }

  pathEnd(): BddPacketSet {
    return this.join(this.outside.pathEnd(), this.inside.pathEnd());
  }

  decidedBy(pick: (d: Decider) => boolean): BddPacketSet {
    return this.join(this.outside.decidedBy(pick), this.inside.decidedBy(pick));
  }
}

/**
 * Whether compiling with `assume: 'all'` can give other sets than the default `assume: 'main'`: only a stateful match
 * with a known outcome for a fresh source (`fresh` set) is compiled differently. Without one, the two compilations
 * are the same, and a caller holding one need not build the other (kube-proxy's rulesets have none).
 */
export function dependsOnState(ruleset: Ruleset): boolean {
  for (const t of ruleset.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) for (const m of r.matches) if (m.kind === 'opaque' && m.fresh !== undefined) return true;
    }
  }
  return false;
}

/** Compiles a ruleset for a hook path into verdict sets. */
export function compileRuleset(ruleset: Ruleset, opts: CompileOptions): CompiledBddRuleset {
  const space = opts.space ?? createPacketSpace([ruleset]);
  let region = space.universe;
  if (opts.region) {
    if (opts.region.space !== space || !(opts.region instanceof BddPacketSet)) {
      throw new Error('compileRuleset: the region must be a set of the same packet space');
    }
    region = space.bdd.and(opts.region.node, space.universe);
  }
  const parts = opts.regionParts?.map((p) => (p as BddPacketSet).node);
  if (opts.memo && opts.memo.space !== space)
    throw new Error('compileRuleset: the memo must be of the same packet space');
  const c = new Compiler(
    space,
    ruleset,
    opts.hook,
    opts.only ?? false,
    region,
    parts,
    (opts.assume ?? 'main') === 'main',
    opts.memo,
    opts.blocks ?? 'auto',
  );
  if (opts.onProgress) {
    c.onProgress = opts.onProgress;
    for (const t of ruleset.tables) for (const ch of t.chains) c.totalRules += ch.rules.length;
  }
  c.run();
  return new Compiled(ruleset, opts.hook, space, c);
}
