/**
 * Computes plans off the server's event loop: a 10k-rule plan takes the engine seconds, and the API (health
 * checks, reads, other reviews) must keep answering meanwhile. The config travels as its text and is parsed here,
 * so nothing but plain data crosses the thread boundary.
 */
import { parentPort } from 'node:worker_threads';
import { computePlan } from '../change/plan.js';
import type { PlanHostInput } from '../change/types.js';
import { parseConfig } from '../config/load.js';
import { RampartError } from '../errors.js';

export interface PlanRequest {
  readonly id: number;
  readonly configText: string;
  readonly configFile: string;
  readonly inputs: readonly PlanHostInput[];
  readonly today: string;
  readonly findings?: boolean;
}

parentPort?.on('message', (req: PlanRequest) => {
  // The budget's clock starts now: loading this thread's modules is not the plan's time.
  parentPort?.postMessage({ id: req.id, started: true });
  try {
    const plan = computePlan(parseConfig(req.configText, req.configFile), req.inputs, {
      today: req.today,
      ...(req.findings !== undefined ? { findings: req.findings } : {}),
    });
    parentPort?.postMessage({ id: req.id, plan });
  } catch (e) {
    const error =
      e instanceof RampartError
        ? { code: e.code, message: e.message, details: { ...e.details } }
        : {
            code: 'RAMPART_ERR_INTERNAL',
            message: e instanceof Error ? (e.stack ?? e.message) : String(e),
            details: {},
          };
    parentPort?.postMessage({ id: req.id, error });
  }
});
