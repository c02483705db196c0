/**
 * `rampart incident remediate ID` (issue 16 §3): proposes the fix of an incident's suspected cause through the
 * normal change path, never around it. For a Rampart change: its rollback (ChangeService.rollback: each host's
 * previous desired ruleset, linked to the change). For an out-of-band edit (drift): a change that restores the
 * desired ruleset on the drifted hosts. Either is then planned, reviewed (four eyes) and applied safely like any
 * change; inside a freeze window it is applied as an emergency change (`rampart change apply N --emergency REASON`),
 * flagged on the change, audited and alerted on as every emergency is. The proposal is on the incident's timeline;
 * the change's own steps (approved, applied, rolled back) are there too, from the audit trail.
 */
import { activeFreeze } from '../change/policy.js';
import { UserError } from '../errors.js';
import type { Actor, ChangeTarget, DesiredState } from '../store/types.js';
import { ChangeService, type ChangeView } from './changes.js';
import type { ServerDeps } from './route.js';

export interface RemediationView {
  readonly incident: number;
  readonly kind: 'rollback' | 'restore';
  /** The suspect it answers (its id, kind, hosts). */
  readonly suspect: { readonly id: string; readonly kind: 'change' | 'drift'; readonly hosts: readonly string[] };
  readonly changes: readonly ChangeView[];
  /** What to do next, in words: who approves, how to apply (as an emergency inside a freeze window). */
  readonly next: string;
}

export async function remediate(
  deps: ServerDeps,
  actor: Actor,
  id: number,
  reason: string | undefined,
): Promise<RemediationView> {
  const v = await deps.incidents.suspects(id);
  const top = v.candidates[0];
  if (v.verdict !== 'suspected' || !top?.suspected) {
    throw new UserError(
      'RAMPART_ERR_STATE',
      `incident ${id} has no suspected change or drift to undo: ${v.text} Remediate by hand (see the runbook), or propose a change with 'rampart change propose'.`,
      { incident: id, verdict: v.verdict },
    );
  }
  const why = `remediation of incident ${id}${reason ? `: ${reason}` : ''}`;
  const service = new ChangeService(deps);
  let changes: ChangeView[];
  let hosts: string[];
  let kind: RemediationView['kind'];
  if (top.kind === 'change') {
    const changeId = top.changeId as number;
    hosts = v.candidates.filter((c) => c.suspected && c.changeId === changeId).map((c) => c.host);
    changes = await service.rollback(actor, changeId, why);
    kind = 'rollback';
  } else {
    hosts = [...new Set(v.candidates.filter((c) => c.suspected && c.kind === 'drift').map((c) => c.host))];
    changes = await restoreDesired(deps, service, actor, hosts, why);
    kind = 'restore';
  }
  const freeze = activeFreeze(deps.config.current().policy, deps.now());
  const ids = changes.map((c) => c.change.id);
  const list = ids.map((n) => `change ${n}`).join(', ');
  const apply = ids.map((n) => `rampart change apply ${n}${freeze ? ` --emergency "incident ${id}"` : ''}`).join('; ');
  const next = `${list} ${ids.length === 1 ? 'is' : 'are'} proposed: an approver reviews ${ids.length === 1 ? 'it' : 'them'} (rampart change approve N), then ${freeze ? `inside freeze window '${freeze.name}' apply as an emergency change` : 'apply'}: ${apply}`;
  const what =
    kind === 'rollback'
      ? `rolls back change ${top.changeId} on ${hosts.join(', ')}`
      : `restores the desired ruleset on ${hosts.join(', ')} (undoes the out-of-band edit)`;
  await deps.incidents.recordRemediation(
    id,
    `Remediation proposed by ${actor.name}: ${list} ${what}`,
    { changes: ids, kind, suspect: top.id, hosts },
    actor,
  );
  return { incident: id, kind, suspect: { id: top.id, kind: top.kind, hosts }, changes, next };
}

/** Proposes each drifted host's current desired ruleset again: one change when they share it, else one per host. */
async function restoreDesired(
  deps: ServerDeps,
  service: ChangeService,
  actor: Actor,
  hosts: readonly string[],
  reason: string,
): Promise<ChangeView[]> {
  const desired = new Map<string, DesiredState>();
  for (const host of hosts) {
    const d = await deps.store.getDesired(host);
    if (!d) {
      throw new UserError(
        'RAMPART_ERR_STATE',
        `${host} has no desired ruleset to restore; propose the ruleset you want with 'rampart change propose'`,
        { host },
      );
    }
    desired.set(host, d);
  }
  const texts = new Set([...desired.values()].map((d) => `${d.format}\u0000${d.ruleset}`));
  const config = deps.config.current();
  // A group whose members are exactly the drifted hosts is one target; otherwise each host is its own.
  const groups = [...new Set(config.hosts.flatMap((h) => (h.group ? [h.group] : [])))];
  const group = groups.find((g) => {
    const members = config.hosts.filter((h) => h.group === g).map((h) => h.name);
    return members.length === hosts.length && members.every((m) => hosts.includes(m));
  });
  const targets: { target: ChangeTarget; d: DesiredState }[] =
    texts.size === 1 && hosts.length > 1 && group
      ? [{ target: { kind: 'group', name: group }, d: desired.get(hosts[0] as string) as DesiredState }]
      : [...desired].map(([host, d]) => ({ target: { kind: 'host' as const, name: host }, d }));
  const views: ChangeView[] = [];
  for (const t of targets) {
    const { view } = await service.propose(actor, {
      target: t.target,
      ruleset: t.d.ruleset,
      format: t.d.format,
      file: `desired-revision-${t.d.revision}`,
      reason: `restore the desired ruleset (revision ${t.d.revision}): ${reason}`,
    });
    views.push(view);
  }
  return views;
}
