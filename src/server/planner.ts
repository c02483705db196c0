/**
 * Where the server computes plans: off the event loop, in worker threads, each plan within a time and memory
 * budget (`policy.plan-timeout`, `policy.plan-memory`), through a queue that small plans do not wait behind large
 * ones in.
 *
 * - Pool: up to `workers` threads (default 2). With two or more, large plans (rulesets over `smallBytes`) may
 *   use all but one of them, so a small plan always finds a thread within the time of another small plan.
 * - Queue: small plans first, then large; first come, first served within a size class.
 * - Budget: a plan over its time has its thread terminated and fails with RAMPART_ERR_PLAN_TIMEOUT; a thread
 *   that runs out of its heap fails the plan with RAMPART_ERR_PLAN_MEMORY. The thread is replaced; nothing else
 *   is affected.
 *
 * When running from TypeScript sources (the test runner) a worker cannot load .ts files; the planner then computes
 * inline (no budget), unless it is given the built worker's path (`script`), as the API tests of the budget do.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { computePlan } from '../change/plan.js';
import type { Plan, PlanHostInput } from '../change/types.js';
import { parseConfig } from '../config/load.js';
import { ERRORS, type ErrorCode, InternalError, UserError } from '../errors.js';
import type { PlanRequest } from './plan-worker.js';

export interface ConfigSource {
  readonly text: string;
  readonly file: string;
}

export interface PlanBudget {
  readonly timeoutMs: number;
  readonly memoryMiB: number;
}

export interface ComputeOptions {
  /** false: leave the audit out (drift needs only the semantic diff). */
  readonly findings?: boolean;
  readonly budget?: PlanBudget;
  /** Called when the plan leaves the queue and starts on a thread. */
  readonly onStart?: () => void;
}

/** Where a plan is: waiting (with how many are ahead of it) or running (since when). */
export type PlanProgress =
  | { readonly state: 'queued'; readonly ahead: number }
  | { readonly state: 'running'; readonly startedAt: number };

export interface PlanTicket {
  readonly result: Promise<Plan>;
  progress(): PlanProgress;
}

export interface Planner {
  compute(config: ConfigSource, inputs: readonly PlanHostInput[], today: string, opts?: ComputeOptions): Promise<Plan>;
  /** The same, with a handle to ask where the plan is. */
  submit(config: ConfigSource, inputs: readonly PlanHostInput[], today: string, opts?: ComputeOptions): PlanTicket;
  /** Plans waiting and running, for /metrics. */
  load(): { readonly queued: number; readonly running: number };
  close(): Promise<void>;
}

export interface PlannerOptions {
  /** Threads at most (default 2). */
  readonly workers?: number;
  /** Rulesets up to this many bytes in all make a small plan (default 256 KiB, about 5,000 nft rules). */
  readonly smallBytes?: number;
  /** The built worker script; default: ./plan-worker.js next to this module when it is built (.js). */
  readonly script?: string;
  readonly now?: () => number;
}

export const DEFAULT_BUDGET: PlanBudget = { timeoutMs: 60_000, memoryMiB: 2048 };

type Answer =
  | { id: number; started: true }
  | { id: number; plan: Plan }
  | { id: number; error: { code: string; message: string; details: Record<string, unknown> } };

function inlinePlanner(): Planner {
  const run = (config: ConfigSource, inputs: readonly PlanHostInput[], today: string, opts: ComputeOptions = {}) => {
    const started = Date.now();
    const result = (async () => {
      opts.onStart?.();
      return computePlan(parseConfig(config.text, config.file), inputs, {
        today,
        ...(opts.findings !== undefined ? { findings: opts.findings } : {}),
      });
    })();
    return { result, progress: (): PlanProgress => ({ state: 'running', startedAt: started }) };
  };
  return {
    compute: (config, inputs, today, opts) => run(config, inputs, today, opts).result,
    submit: run,
    load: () => ({ queued: 0, running: 0 }),
    close: async () => {},
  };
}

interface Job {
  readonly id: number;
  readonly request: PlanRequest;
  readonly small: boolean;
  readonly budget: PlanBudget;
  readonly onStart: (() => void) | undefined;
  resolve(p: Plan): void;
  reject(e: Error): void;
  startedAt?: number;
}

interface Slot {
  readonly worker: Worker;
  readonly memoryMiB: number;
  job?: Job | undefined;
  timer?: NodeJS.Timeout | undefined;
}

function rulesetBytes(inputs: readonly PlanHostInput[]): number {
  let n = 0;
  for (const i of inputs) n += i.desired.text.length + (i.current?.text.length ?? 0);
  return n;
}

function budgetError(code: 'RAMPART_ERR_PLAN_TIMEOUT' | 'RAMPART_ERR_PLAN_MEMORY', budget: PlanBudget): UserError {
  return code === 'RAMPART_ERR_PLAN_TIMEOUT'
    ? new UserError(
        code,
        `the plan took longer than ${budget.timeoutMs / 1000} s (policy.plan-timeout) and was stopped; raise policy.plan-timeout, or split the ruleset`,
        { timeoutSeconds: budget.timeoutMs / 1000 },
      )
    : new UserError(
        code,
        `the plan needed more than ${budget.memoryMiB} MiB of memory (policy.plan-memory) and was stopped; raise policy.plan-memory, or split the ruleset`,
        { memoryMiB: budget.memoryMiB },
      );
}

export function createPlanner(opts: PlannerOptions = {}): Planner {
  const built = fileURLToPath(new URL('./plan-worker.js', import.meta.url));
  const script = opts.script ?? (import.meta.url.endsWith('.js') && existsSync(built) ? built : undefined);
  if (script === undefined) return inlinePlanner();
  const max = Math.max(1, opts.workers ?? 2);
  const smallBytes = opts.smallBytes ?? 256 * 1024;
  const now = opts.now ?? Date.now;
  const queue: Job[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closed = false;

  const release = (slot: Slot) => {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
  };

  /** Ends a thread (its job already settled or failed): the next plan gets a fresh one. */
  const retire = (slot: Slot) => {
    release(slot);
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    void slot.worker.terminate();
  };

  const spawn = (memoryMiB: number): Slot => {
    const worker = new Worker(script, { resourceLimits: { maxOldGenerationSizeMb: memoryMiB } });
    worker.unref();
    const slot: Slot = { worker, memoryMiB };
    worker.on('message', (a: Answer) => {
      const job = slot.job;
      if (!job || job.id !== a.id) return;
      if ('started' in a) {
        job.startedAt = now();
        slot.timer = setTimeout(() => {
          if (slot.job !== job) return;
          retire(slot);
          job.reject(budgetError('RAMPART_ERR_PLAN_TIMEOUT', job.budget));
          pump();
        }, job.budget.timeoutMs);
        return;
      }
      release(slot);
      if ('plan' in a) job.resolve(a.plan);
      else {
        const code = (a.error.code in ERRORS ? a.error.code : 'RAMPART_ERR_INTERNAL') as ErrorCode;
        job.reject(
          ERRORS[code].user
            ? new UserError(code, a.error.message, a.error.details)
            : new InternalError(a.error.message),
        );
      }
      pump();
    });
    worker.on('error', (e: Error & { code?: string }) => {
      const job = slot.job;
      retire(slot);
      if (job) {
        job.reject(
          e.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? budgetError('RAMPART_ERR_PLAN_MEMORY', job.budget)
            : new InternalError(`plan worker failed: ${e.message}`),
        );
      }
      pump();
    });
    worker.on('exit', () => {
      const job = slot.job;
      if (slots.includes(slot)) retire(slot);
      if (job) job.reject(new InternalError('plan worker exited'));
      pump();
    });
    slots.push(slot);
    return slot;
  };

  /** Starts queued plans on idle threads: small ones first; large ones leave one thread for small ones. */
  const pump = () => {
    if (closed) return;
    for (;;) {
      const idx = queue.findIndex((j) => j.small);
      const large = slots.filter((s) => s.job && !s.job.small).length;
      const pick = idx >= 0 ? idx : max > 1 && large >= max - 1 ? -1 : queue.length > 0 ? 0 : -1;
      const job = pick >= 0 ? queue[pick] : undefined;
      if (!job) return;
      let slot = slots.find((s) => !s.job && s.memoryMiB === job.budget.memoryMiB);
      if (!slot) {
        // An idle thread with another heap limit is replaced; otherwise a new one is started if there is room.
        const stale = slots.find((s) => !s.job);
        if (stale) retire(stale);
        if (slots.length >= max) return;
        slot = spawn(job.budget.memoryMiB);
      }
      queue.splice(pick, 1);
      slot.job = job;
      job.onStart?.();
      // The time budget starts when the thread says it has started the plan (see plan-worker.ts).
      slot.worker.postMessage(job.request);
    }
  };

  const submit: Planner['submit'] = (config, inputs, today, o = {}) => {
    const id = nextId++;
    const request: PlanRequest = {
      id,
      configText: config.text,
      configFile: config.file,
      inputs,
      today,
      ...(o.findings !== undefined ? { findings: o.findings } : {}),
    };
    let job: Job | undefined;
    const result = new Promise<Plan>((resolve, reject) => {
      job = {
        id,
        request,
        small: rulesetBytes(inputs) <= smallBytes,
        budget: o.budget ?? DEFAULT_BUDGET,
        onStart: o.onStart,
        resolve,
        reject,
      };
      if (closed) reject(new InternalError('the planner is closed'));
      else queue.push(job);
    });
    pump();
    const mine = job as Job;
    return {
      result,
      progress(): PlanProgress {
        if (mine.startedAt !== undefined) return { state: 'running', startedAt: mine.startedAt };
        const at = queue.indexOf(mine);
        if (at < 0) return { state: 'running', startedAt: now() };
        const ahead = queue.filter((j, i) => i < at && (j.small || !mine.small)).length;
        return { state: 'queued', ahead: ahead + slots.filter((s) => s.job).length };
      },
    };
  };

  return {
    submit,
    compute: (config, inputs, today, o) => submit(config, inputs, today, o).result,
    load: () => ({ queued: queue.length, running: slots.filter((s) => s.job).length }),
    async close() {
      closed = true;
      for (const j of queue.splice(0)) j.reject(new InternalError('the server is shutting down'));
      await Promise.all(
        slots.splice(0).map(async (s) => {
          const job = s.job;
          release(s);
          job?.reject(new InternalError('the server is shutting down'));
          await s.worker.terminate();
        }),
      );
    },
  };
}
