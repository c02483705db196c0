/**
 * Holds thousands of periodic checks (issue 14: 10,000 monitors at 30 s on a fraction of a core).
 *
 * `DueQueue` is the pure part: a binary heap of tasks by due time, time passed in. A new task starts at a jittered
 * offset inside its interval (derived from its key, so the spread survives a restart and is the same on every
 * replica), and runs every interval after; a re-check runs it once more soon without moving its rhythm.
 *
 * `Scheduler` is the edge: one timer set to the earliest due time, and at most `concurrency` checks in flight (a
 * check that cannot start waits in line; a slow target never holds up the others beyond that bound).
 */

export interface Task<T = unknown> {
  /** Unique: `shop@web1|server`. */
  readonly key: string;
  readonly intervalMs: number;
  readonly payload: T;
  /** When a new task first runs (default: its jittered slot in the interval); a monitor taken over runs soon. */
  readonly startAt?: number;
}

interface Entry<T> {
  task: Task<T>;
  due: number;
  /** The next regular run (a re-check is due earlier, once). */
  regular: number;
  index: number;
}

/** A stable offset in [0, interval) from the key: FNV-1a. */
export function jitter(key: string, intervalMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.max(1, intervalMs);
}

export class DueQueue<T = unknown> {
  private readonly heap: Entry<T>[] = [];
  private readonly byKey = new Map<string, Entry<T>>();

  get size(): number {
    return this.byKey.size;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /**
   * Adds or updates tasks so that exactly `tasks` are held: new ones start at their jittered slot after `now`,
   * existing ones keep their rhythm (with the new interval from their next run), missing ones are dropped.
   */
  set(tasks: readonly Task<T>[], now: number): void {
    const keep = new Set(tasks.map((t) => t.key));
    for (const key of [...this.byKey.keys()]) if (!keep.has(key)) this.remove(key);
    for (const t of tasks) {
      const e = this.byKey.get(t.key);
      if (e) {
        e.task = t;
        continue;
      }
      const first = t.startAt ?? now + jitter(t.key, t.intervalMs);
      this.push({ task: t, due: first, regular: first, index: 0 });
    }
  }

  remove(key: string): void {
    const e = this.byKey.get(key);
    if (!e) return;
    this.byKey.delete(key);
    const last = this.heap.pop() as Entry<T>;
    if (e !== last) {
      this.heap[e.index] = last;
      last.index = e.index;
      this.fix(last.index);
    }
  }

  /** The earliest due time, or undefined when empty. */
  nextDue(): number | undefined {
    return this.heap[0]?.due;
  }

  /** Takes every task due at `now` (earliest first) and reschedules each for its next run. */
  take(now: number, max = Number.POSITIVE_INFINITY): Task<T>[] {
    const out: Task<T>[] = [];
    while (out.length < max) {
      const top = this.heap[0];
      if (!top || top.due > now) break;
      out.push(top.task);
      if (top.due >= top.regular) {
        // A regular run: the next one is an interval later (skipping runs missed while the process was busy).
        let next = top.regular + top.task.intervalMs;
        if (next <= now) next = now + top.task.intervalMs - ((now - top.regular) % top.task.intervalMs);
        top.regular = next;
      }
      top.due = top.regular;
      this.fix(0);
    }
    return out;
  }

  /** Runs `key` once more at `at` (if earlier than its next run); its rhythm stays. */
  recheck(key: string, at: number): void {
    const e = this.byKey.get(key);
    if (!e || at >= e.due) return;
    e.due = at;
    this.fix(e.index);
  }

  private push(e: Entry<T>): void {
    e.index = this.heap.length;
    this.heap.push(e);
    this.byKey.set(e.task.key, e);
    this.up(e.index);
  }

  private fix(i: number): void {
    this.up(i);
    this.down(i);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as Entry<T>).due <= (h[i] as Entry<T>).due) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && (h[l] as Entry<T>).due < (h[m] as Entry<T>).due) m = l;
      if (r < h.length && (h[r] as Entry<T>).due < (h[m] as Entry<T>).due) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const x = h[a] as Entry<T>;
    const y = h[b] as Entry<T>;
    h[a] = y;
    h[b] = x;
    x.index = b;
    y.index = a;
  }
}

export interface SchedulerOptions<T> {
  readonly run: (task: Task<T>) => Promise<void>;
  /** Checks in flight at most (default 256). */
  readonly concurrency?: number;
  readonly now?: () => number;
}

/** The timer and the bounded concurrency around a DueQueue. */
export class Scheduler<T = unknown> {
  readonly queue = new DueQueue<T>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private waiting: Task<T>[] = [];
  private stopped = true;
  private readonly now: () => number;
  private readonly concurrency: number;

  constructor(private readonly opts: SchedulerOptions<T>) {
    this.now = opts.now ?? Date.now;
    this.concurrency = opts.concurrency ?? 256;
  }

  set(tasks: readonly Task<T>[]): void {
    this.queue.set(tasks, this.now());
    this.arm();
  }

  recheck(key: string, delayMs: number): void {
    this.queue.recheck(key, this.now() + delayMs);
    this.arm();
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting = [];
  }

  /** Checks running and waiting for a slot. */
  load(): { readonly inFlight: number; readonly waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length };
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const due = this.queue.nextDue();
    if (due === undefined) return;
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - this.now()));
    this.timer.unref?.();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    // Tasks behind in the waiting line are not taken again: a target slower than its interval gets one run at a time.
    const busy = new Set(this.waiting.map((t) => t.key));
    for (const t of this.queue.take(this.now())) if (!busy.has(t.key)) this.waiting.push(t);
    this.drain();
    this.arm();
  }

  private drain(): void {
    while (this.inFlight < this.concurrency && this.waiting.length > 0 && !this.stopped) {
      const t = this.waiting.shift() as Task<T>;
      this.inFlight++;
      void this.opts
        .run(t)
        .catch(() => {
          // run() reports its own failures; a throw must not stop the scheduler.
        })
        .finally(() => {
          this.inFlight--;
          this.drain();
        });
    }
  }
}
