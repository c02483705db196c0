/**
 * Agents and probes that stopped reporting (issue 15 §1, `AgentSilent` / `ProbeSilent`), pure: a reporter is silent
 * once more than `intervals` of its intervals passed since it was last seen, and back when it is seen again. The
 * server's monitoring loop owns the clock and the last-seen times (src/server/monitoring.ts); this says what changed.
 */

export interface Reporter {
  /** `agent:web1`, `probe:eu-west`: a vantage point's name. */
  readonly vantage: string;
  /** When it was last heard from (epoch ms); undefined when never: a reporter never seen is not silent, it is new. */
  readonly lastSeenMs: number | undefined;
  /** How often it is expected to report. */
  readonly intervalMs: number;
}

export interface SilenceChange {
  readonly vantage: string;
  readonly to: 'silent' | 'back';
  readonly lastSeenMs: number;
  /** How long it has been silent (to `silent`), or was (to `back`: until it was seen again). */
  readonly forMs: number;
  readonly intervalMs: number;
}

/** The default number of intervals without a word before a reporter counts as silent. */
export const DEFAULT_SILENT_INTERVALS = 3;

/**
 * Which reporters fell silent or came back at `nowMs`, given the ones `silent` before. Reporters no longer listed
 * (removed from the config) leave the silent set without a word: nobody expects them any more.
 */
export function silentReporters(
  reporters: readonly Reporter[],
  silent: ReadonlySet<string>,
  nowMs: number,
  intervals = DEFAULT_SILENT_INTERVALS,
): { readonly changes: SilenceChange[]; readonly silent: Set<string> } {
  const next = new Set<string>();
  const changes: SilenceChange[] = [];
  for (const r of reporters) {
    if (r.lastSeenMs === undefined) {
      if (silent.has(r.vantage)) next.add(r.vantage);
      continue;
    }
    const quiet = nowMs - r.lastSeenMs;
    const isSilent = quiet > intervals * r.intervalMs;
    if (isSilent) next.add(r.vantage);
    if (isSilent && !silent.has(r.vantage))
      changes.push({
        vantage: r.vantage,
        to: 'silent',
        lastSeenMs: r.lastSeenMs,
        forMs: quiet,
        intervalMs: r.intervalMs,
      });
    else if (!isSilent && silent.has(r.vantage))
      changes.push({
        vantage: r.vantage,
        to: 'back',
        lastSeenMs: r.lastSeenMs,
        forMs: quiet,
        intervalMs: r.intervalMs,
      });
  }
  return { changes, silent: next };
}
