import { UserError } from '../errors.js';
import type { FinalVerdict, Hook, Packet, Ruleset } from './model.js';

export interface TraceOptions {
  readonly hook: Hook;
}

export interface TraceStep {
  readonly kind: string;
}

export interface TraceResult {
  readonly verdict: FinalVerdict;
  readonly path: readonly TraceStep[];
}

/** Follows one packet through the ruleset's base chains on a hook, with netfilter's semantics. */
export function trace(_ruleset: Ruleset, _packet: Packet, _opts: TraceOptions): TraceResult {
  throw new UserError('RAMPART_ERR_USAGE', 'tracer not implemented yet');
}
