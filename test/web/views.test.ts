/**
 * The dashboard's pure views (no browser): a change's rollout host by host (web/src/rollout.ts) from the jobs and
 * job events the server answers with a change, in the shapes src/server/rollout.ts and the agent record them.
 */
import { describe, expect, it } from 'vitest';
import { type RolloutEvent, type RolloutJob, rolloutByHost } from '../../web/src/rollout.js';

const T = (s: number) => new Date(Date.parse('2026-12-05T10:00:00Z') + s * 1000).toISOString();

function job(id: number, host: string, step: number, state: string): RolloutJob {
  return { id, host, step, state, createdAt: T(0), updatedAt: T(100) };
}

let nextId = 1;
function ev(jobId: number, host: string, s: number, kind: string, detail = kind, agentAt?: number): RolloutEvent {
  return {
    id: nextId++,
    jobId,
    host,
    at: T(s),
    sourceAt: agentAt === undefined ? null : T(agentAt),
    source: agentAt === undefined ? 'server' : 'agent',
    kind,
    detail,
  };
}

describe('a rollout host by host', () => {
  it('follows each host through staged, applied, health checked and its outcome, the canary first', () => {
    const jobs = [job(12, 'web2', 1, 'failed'), job(11, 'web1', 0, 'done'), job(13, 'web3', 2, 'cancelled')];
    const events = [
      ev(11, 'web1', 1, 'handed-out', 'step 1 of 3'),
      ev(11, 'web1', 2, 'pending-saved', 'snapshot saved', 1.5),
      ev(11, 'web1', 3, 'applied', 'in force', 2.5),
      ev(11, 'web1', 4, 'health-ok', 'local checks pass', 3.5),
      ev(11, 'web1', 5, 'confirmed', 'local and remote health checks pass'),
      ev(11, 'web1', 5, 'done', 'local and remote health checks pass'),
      ev(11, 'web1', 6, 'committed', 'committed', 5.5),
      ev(12, 'web2', 7, 'handed-out'),
      ev(12, 'web2', 8, 'pending-saved', 'saved', 8),
      ev(12, 'web2', 9, 'applied', 'in force', 9),
      ev(12, 'web2', 10, 'health-failed', 'http :8080/healthz: 503', 10),
      ev(12, 'web2', 11, 'rolled-back', 'snapshot restored', 11),
      ev(13, 'web3', 11, 'cancelled', 'the rollout stopped at web2; web3 keeps its ruleset'),
    ];
    const rows = rolloutByHost(jobs, events);
    expect(rows.map((r) => [r.step, r.host, r.status])).toEqual([
      [1, 'web1', 'committed'],
      [2, 'web2', 'rolled back'],
      [3, 'web3', 'cancelled'],
    ]);
    const [web1, web2, web3] = rows;
    // the agent's clock where it reported one, the server's otherwise
    expect(web1?.staged).toEqual({ at: T(1.5), kind: 'pending-saved', detail: 'snapshot saved' });
    expect(web1?.applied?.at).toBe(T(2.5));
    expect(web1?.health).toMatchObject({ kind: 'confirmed', ok: true, at: T(5) });
    expect(web1?.outcome).toMatchObject({ outcome: 'committed', at: T(5) });
    expect(web2?.health).toMatchObject({ kind: 'health-failed', ok: false, detail: 'http :8080/healthz: 503' });
    expect(web2?.outcome).toMatchObject({ outcome: 'rolled-back', at: T(11), detail: 'snapshot restored' });
    expect([web3?.staged, web3?.applied, web3?.health]).toEqual([undefined, undefined, undefined]);
    expect(web3?.outcome?.outcome).toBe('cancelled');
  });

  it('says a host waits for its turn, or applies now, until it has an outcome', () => {
    const rows = rolloutByHost(
      [job(1, 'web1', 0, 'taken'), job(2, 'web2', 1, 'queued'), job(3, 'web3', 2, 'queued')],
      [
        ev(1, 'web1', 1, 'handed-out'),
        ev(1, 'web1', 2, 'pending-saved', 'saved', 2),
        ev(2, 'web2', 3, 'waiting', 'service shop has no other healthy backend'),
      ],
    );
    expect(rows.map((r) => r.status)).toEqual(['applying', 'waiting', 'queued']);
    expect(rows[0]?.staged?.kind).toBe('pending-saved');
    expect(rows[0]?.applied).toBeUndefined();
    expect(rows[1]?.waiting?.detail).toBe('service shop has no other healthy backend');
  });

  it('shows a rollback after a lost confirmation, a refusal, and a failure without events', () => {
    const rows = rolloutByHost(
      [job(1, 'web1', 0, 'failed'), job(2, 'web2', 0, 'failed'), job(3, 'web3', 0, 'failed')],
      [
        ev(1, 'web1', 1, 'applied', 'in force', 1),
        ev(1, 'web1', 2, 'confirmed', 'pass'),
        ev(1, 'web1', 2, 'done', 'pass'),
        ev(1, 'web1', 40, 'confirm-timeout', 'no confirmation by the deadline', 39),
        ev(1, 'web1', 41, 'rolled-back', 'snapshot restored', 40),
        ev(1, 'web1', 41, 'attention', 'web1 rolled back after its job was confirmed'),
        ev(2, 'web2', 1, 'refused', 'plan 4 is stale'),
      ],
    );
    expect(rows.map((r) => [r.host, r.status])).toEqual([
      ['web1', 'rolled back'],
      ['web2', 'refused'],
      ['web3', 'failed'],
    ]);
    expect(rows[0]?.health).toMatchObject({ kind: 'confirm-timeout', ok: false });
    expect(rows[0]?.outcome?.at).toBe(T(40));
    expect(rows[2]?.outcome).toMatchObject({ outcome: 'failed', at: T(100) });
  });

  it('is empty for a change that was never rolled out', () => {
    expect(rolloutByHost([], [])).toEqual([]);
  });
});
