/**
 * What a job's end does to its change, inside a write: a host done makes the change's ruleset its desired state
 * (and the change applied when it was the last host); a host that failed or rolled back ends the rollout there:
 * the jobs not yet started are cancelled and the hosts already done keep the new ruleset.
 */
import { assertTransition } from '../change/policy.js';
import { UserError } from '../errors.js';
import type { ApplyJob, ChangeState, StoreWriter } from '../store/types.js';

async function changeOf(w: StoreWriter, job: ApplyJob) {
  const c = await w.getChange(job.changeId);
  if (!c) throw new UserError('RAMPART_ERR_NOT_FOUND', `change ${job.changeId} of job ${job.id} does not exist`);
  return c;
}

export async function completeJob(
  w: StoreWriter,
  job: ApplyJob,
  at: string,
  source: string,
  detail: string,
): Promise<ApplyJob> {
  const change = await changeOf(w, job);
  const updated = (await w.updateJob(job.id, 'done', at)) as ApplyJob;
  const d = await w.setDesired({
    host: job.host,
    format: change.format,
    ruleset: change.ruleset,
    changeId: change.id,
    updatedAt: at,
  });
  await w.insertJobEvent({
    jobId: job.id,
    changeId: change.id,
    host: job.host,
    at,
    sourceAt: null,
    source,
    kind: 'done',
    detail,
  });
  const after: Record<string, unknown> = {
    job: job.id,
    host: job.host,
    state: 'done',
    desiredRevision: d.revision,
    detail,
  };
  const jobs = await w.listJobs({ changeId: change.id });
  if (jobs.every((j) => j.state === 'done')) {
    assertTransition(change.state, 'applied', change.id);
    await w.updateChange(change.id, change.version, { state: 'applied', updatedAt: at });
    after.change = 'applied';
    if (change.rollbackOf !== null) await settleRolledBack(w, change.rollbackOf, change.id, at);
  }
  await w.audit({ action: 'job.done', target: `change:${change.id}`, before: { job: job.state }, after });
  return updated;
}

export async function failJob(
  w: StoreWriter,
  job: ApplyJob,
  at: string,
  changeState: Extract<ChangeState, 'failed' | 'rolled-back'>,
  source: string,
  detail: string,
): Promise<ApplyJob> {
  const change = await changeOf(w, job);
  const updated = (await w.updateJob(job.id, 'failed', at)) as ApplyJob;
  const cancelled: number[] = [];
  for (const j of await w.listJobs({ changeId: change.id })) {
    if (j.state === 'queued') {
      await w.updateJob(j.id, 'cancelled', at);
      cancelled.push(j.id);
      await w.insertJobEvent({
        jobId: j.id,
        changeId: change.id,
        host: j.host,
        at,
        sourceAt: null,
        source: 'server',
        kind: 'cancelled',
        detail: `the rollout stopped at ${job.host}; ${j.host} keeps its ruleset`,
      });
    }
  }
  let state = change.state;
  // An applied change rolls back too when a host undid it after its confirmation was lost.
  if (change.state === 'applying' || (change.state === 'applied' && changeState === 'rolled-back')) {
    assertTransition(change.state, changeState, change.id);
    state = (await w.updateChange(change.id, change.version, { state: changeState, updatedAt: at })).state;
  }
  await w.audit({
    action: `job.${changeState === 'rolled-back' ? 'rolled-back' : 'failed'}`,
    target: `change:${change.id}`,
    before: { job: job.state, change: change.state },
    after: { job: job.id, host: job.host, change: state, cancelled, detail, source },
  });
  return updated;
}

/** The original of a rollback becomes rolled-back once none of its hosts still has its ruleset as desired. */
async function settleRolledBack(w: StoreWriter, originalId: number, byChange: number, at: string): Promise<void> {
  const original = await w.getChange(originalId);
  if (original?.state !== 'applied') return;
  for (const h of original.hosts) if ((await w.getDesired(h))?.changeId === originalId) return;
  const next = await w.updateChange(originalId, original.version, { state: 'rolled-back', updatedAt: at });
  await w.audit({
    action: 'change.rolled-back',
    target: `change:${originalId}`,
    before: { state: original.state },
    after: { state: next.state, by: `change:${byChange}` },
  });
}
