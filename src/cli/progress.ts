/**
 * Progress lines on stderr for long work (audit, rules --unreachable, diff, plan, reach on big rulesets): the phase,
 * counts and the time since the command started, so nobody stares at a silent prompt.
 *
 * Shown only when stderr is a terminal and `--quiet` is not given; `RAMPART_PROGRESS=1` shows them anyway (tests,
 * logs of a long CI job), `RAMPART_PROGRESS=0` never. Short work prints nothing: on a terminal the first line waits
 * until the command has run for a second. Counts are printed at most once a second, and the last count of a phase
 * when the phase ends. The engine only calls back with counts; the clock is read here.
 */

export interface Progress {
  /** A new phase ("compiling the input hook"). */
  phase(text: string): void;
  /** How far the current phase is (printed at most once a second, and once more when the phase ends). */
  count(done: number, total: number, unit: string): void;
  /** The work is over: the last count of the phase, if it was not printed. */
  end(): void;
}

export const QUIET_HELP = 'no progress lines on stderr (shown on a terminal for long work)';

export interface ProgressOptions {
  readonly quiet?: boolean;
}

const SILENT: Progress = { phase() {}, count() {}, end() {} };

const group = (n: number) => n.toLocaleString('en-US');

export function createProgress(
  opts: ProgressOptions,
  out: { readonly isTTY?: boolean; write(s: string): unknown } = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
  now: () => number = () => performance.now(),
): Progress {
  const forced = env.RAMPART_PROGRESS === '1';
  if (opts.quiet || env.RAMPART_PROGRESS === '0' || !(forced || out.isTTY)) return SILENT;
  const start = now();
  const delayMs = forced ? 0 : 1000;
  const everyMs = 1000;
  let phase: string | undefined;
  let lastPrinted = Number.NEGATIVE_INFINITY;
  let pending: string | undefined;
  const line = (text: string) => {
    const t = now();
    if (t - start < delayMs) return false;
    out.write(`rampart: ${text} (${((t - start) / 1000).toFixed(1)} s)\n`);
    lastPrinted = t;
    return true;
  };
  const flush = () => {
    if (pending !== undefined) line(pending);
    pending = undefined;
  };
  return {
    phase(text) {
      flush();
      phase = text;
      line(text);
    },
    count(done, total, unit) {
      const text = `${phase ?? 'working'}: ${group(done)} of ${group(total)} ${unit}`;
      if (now() - lastPrinted >= everyMs && line(text)) pending = undefined;
      else pending = text;
    },
    end() {
      flush();
    },
  };
}
