/**
 * A change's rollout host by host, from what the server already answers with the change (GET /changes/{id}: `jobs`,
 * one per host in rollout order, and `events`, every step the server and the agents recorded). Pure: the page draws
 * the rows, the unit test (test/web/views.test.ts) checks them.
 *
 * The stages of a host's safe apply (src/agent/protocol.ts AGENT_EVENT_KINDS, src/server/rollout.ts):
 * - **staged**: the agent took the job and saved its snapshot and pending state (`pending-saved`; `handed-out`,
 *   the server's note that the agent took it, stands in until then);
 * - **applied**: the new ruleset is in force on the host (`applied`);
 * - **health checked**: the last verdict of the local checks (`health-ok`, `health-failed`) or of the server's
 *   probes through the host's firewall (`confirmed`, `remote-health-failed`), or no confirmation in time
 *   (`confirm-timeout`);
 * - **outcome**: committed (`committed`, or the server's `done`), rolled back (`rolled-back`, `recovered` after an
 *   agent restart), rollback failed, refused (nothing applied), cancelled (an earlier host failed), or still waiting.
 */

/** The API's job and job event, as much of them as this reads. */
export interface RolloutJob {
  readonly id: number;
  readonly host: string;
  readonly step: number;
  readonly state: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface RolloutEvent {
  readonly id: number;
  readonly jobId: number;
  readonly host: string;
  readonly at: string;
  readonly sourceAt: string | null;
  readonly source: string;
  readonly kind: string;
  readonly detail: string;
}

/** A stage reached: when it happened where it happened (the agent's clock when it reported it), and what was said. */
export interface Stage {
  readonly at: string;
  readonly kind: string;
  readonly detail: string;
}

export type Outcome = 'committed' | 'rolled-back' | 'rollback-failed' | 'refused' | 'cancelled' | 'failed';

export interface HostRollout {
  readonly host: string;
  /** Position in the rollout, 1 = the canary. */
  readonly step: number;
  readonly job: string;
  readonly queuedAt: string;
  readonly staged?: Stage;
  readonly applied?: Stage;
  readonly health?: Stage & { readonly ok: boolean };
  readonly outcome?: Stage & { readonly outcome: Outcome };
  /** Why the host waits for its turn (the server's latest `waiting` note), while it has no outcome. */
  readonly waiting?: Stage;
  /** In words: `committed`, `rolled back`, `applying`, `waiting`, `queued`. */
  readonly status: string;
}

const HEALTH: Readonly<Record<string, boolean>> = {
  'health-ok': true,
  confirmed: true,
  'health-failed': false,
  'remote-health-failed': false,
  'confirm-timeout': false,
};

const OUTCOME: Readonly<Record<string, Outcome>> = {
  committed: 'committed',
  done: 'committed',
  'rolled-back': 'rolled-back',
  recovered: 'rolled-back',
  'rollback-failed': 'rollback-failed',
  refused: 'refused',
  cancelled: 'cancelled',
};

const STATUS: Readonly<Record<Outcome, string>> = {
  committed: 'committed',
  'rolled-back': 'rolled back',
  'rollback-failed': 'rollback failed',
  refused: 'refused',
  cancelled: 'cancelled',
  failed: 'failed',
};

function stage(e: RolloutEvent): Stage {
  return { at: e.sourceAt ?? e.at, kind: e.kind, detail: e.detail };
}

/** One row per host, in rollout order (the canary first). */
export function rolloutByHost(jobs: readonly RolloutJob[], events: readonly RolloutEvent[]): HostRollout[] {
  const byJob = new Map<number, RolloutEvent[]>();
  for (const e of [...events].sort((a, b) => a.id - b.id)) {
    const list = byJob.get(e.jobId);
    if (list) list.push(e);
    else byJob.set(e.jobId, [e]);
  }
  return [...jobs]
    .sort((a, b) => a.step - b.step || a.id - b.id)
    .map((j) => {
      const evs = byJob.get(j.id) ?? [];
      const last = (kinds: readonly string[]) => [...evs].reverse().find((e) => kinds.includes(e.kind));
      const saved = last(['pending-saved']) ?? last(['handed-out']);
      const applied = last(['applied']);
      const health = last(Object.keys(HEALTH));
      // A rollback outranks what came before it (a host that undid a change after its confirmation was lost was
      // `done` first); otherwise the first outcome stands (`committed` after the server's `done` is the same end).
      const ended =
        last(['rollback-failed', 'rolled-back', 'recovered']) ?? evs.find((e) => OUTCOME[e.kind] !== undefined);
      let outcome: HostRollout['outcome'];
      if (ended) outcome = { ...stage(ended), outcome: OUTCOME[ended.kind] as Outcome };
      else if (j.state === 'failed') outcome = { at: j.updatedAt, kind: 'failed', detail: '', outcome: 'failed' };
      const waiting = outcome ? undefined : last(['waiting']);
      const status = outcome
        ? STATUS[outcome.outcome]
        : j.state === 'taken'
          ? 'applying'
          : waiting
            ? 'waiting'
            : j.state === 'done'
              ? 'committed'
              : j.state;
      return {
        host: j.host,
        step: j.step + 1,
        job: j.state,
        queuedAt: j.createdAt,
        ...(saved ? { staged: stage(saved) } : {}),
        ...(applied ? { applied: stage(applied) } : {}),
        ...(health ? { health: { ...stage(health), ok: HEALTH[health.kind] as boolean } } : {}),
        ...(outcome ? { outcome } : {}),
        ...(waiting ? { waiting: stage(waiting) } : {}),
        status,
      };
    });
}
