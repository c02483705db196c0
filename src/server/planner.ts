/**
 * Where the server computes plans: a worker thread when running from the build (dist/), inline when running from
 * TypeScript sources (the test runner), where a worker cannot load .ts files. Plans queue on one worker: they are
 * CPU-bound, and the second core stays with the API.
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

export interface Planner {
  /** `findings: false` leaves the audit out; `diffOnly` computes the semantic diff alone (drift). */
  compute(
    config: ConfigSource,
    inputs: readonly PlanHostInput[],
    today: string,
    opts?: { readonly findings?: boolean; readonly diffOnly?: boolean },
  ): Promise<Plan>;
  close(): Promise<void>;
}

type Answer =
  | { id: number; plan: Plan }
  | { id: number; error: { code: string; message: string; details: Record<string, unknown> } };

function inlinePlanner(): Planner {
  return {
    compute: async (config, inputs, today, opts = {}) =>
      computePlan(parseConfig(config.text, config.file), inputs, { today, ...opts }),
    close: async () => {},
  };
}

export function createPlanner(): Planner {
  const script = fileURLToPath(new URL('./plan-worker.js', import.meta.url));
  if (!import.meta.url.endsWith('.js') || !existsSync(script)) return inlinePlanner();
  let worker: Worker | undefined;
  let next = 1;
  const waiting = new Map<number, { resolve: (p: Plan) => void; reject: (e: Error) => void }>();
  const start = (): Worker => {
    const w = new Worker(script);
    w.unref();
    w.on('message', (a: Answer) => {
      const p = waiting.get(a.id);
      if (!p) return;
      waiting.delete(a.id);
      if ('plan' in a) p.resolve(a.plan);
      else {
        const code = (a.error.code in ERRORS ? a.error.code : 'RAMPART_ERR_INTERNAL') as ErrorCode;
        p.reject(
          ERRORS[code].user
            ? new UserError(code, a.error.message, a.error.details)
            : new InternalError(a.error.message),
        );
      }
    });
    w.on('error', (e) => {
      for (const p of waiting.values()) p.reject(new InternalError(`plan worker failed: ${e.message}`));
      waiting.clear();
      worker = undefined;
    });
    w.on('exit', () => {
      worker = undefined;
    });
    return w;
  };
  return {
    compute(config, inputs, today, opts = {}) {
      worker ??= start();
      const id = next++;
      const req: PlanRequest = { id, configText: config.text, configFile: config.file, inputs, today, ...opts };
      return new Promise<Plan>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker?.postMessage(req);
      });
    },
    async close() {
      await worker?.terminate();
    },
  };
}
