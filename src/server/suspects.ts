/**
 * The suspected change of an incident in the server (issue 16 §3): gathers the candidates in the look-back window
 * from the store (each Rampart change applied to a host in scope, as the host's previous desired revision -> the
 * change's ruleset, with its author, approvers and reason; each drift, as the desired revision it was compared with
 * -> the live ruleset the agent reported, kept in host_drift), the incident's failing flows from the config (its
 * services' ports), runs the pure ranking (src/incident/suspect.ts), and returns it as JSON-safe data.
 *
 * The engine is not cheap: the answer is cached per incident and candidate set (and start), so a dashboard that
 * polls it reads the cache until a new change or drift lands in the window.
 */
import { formatDecider, share } from '../analysis/describe.js';
import type { RampartConfig } from '../config/types.js';
import type { Ruleset } from '../firewall/model.js';
import { parseRuleset } from '../firewall/parse.js';
import { type FailingFlow, findSuspects, type RankedCandidate, type SuspectCandidate } from '../incident/suspect.js';
import type { Incident } from '../incident/types.js';
import type { Store, StoreReader } from '../store/types.js';

/** One break of a candidate, as data a client can print (no bigint, no packet object). */
export interface SuspectBreakView {
  readonly hook: string;
  readonly flow: string;
  readonly intent?: string;
  readonly to: 'drop' | 'reject';
  readonly example: string;
  /** The rules (file:line: rule, or the policy) that decide the broken packets now, largest share first. */
  readonly droppedBy: readonly string[];
  /** What accepted them before. */
  readonly acceptedBefore: readonly string[];
  /** The share of the failing flow's packets it breaks (`100%`). */
  readonly share: string;
}

export interface SuspectCandidateView {
  readonly id: string;
  readonly kind: 'change' | 'drift';
  /** The change's id (kind change). */
  readonly changeId?: number;
  readonly host: string;
  readonly at: string;
  readonly author: string | null;
  readonly approvers: readonly string[];
  readonly reason: string | null;
  readonly suspected: boolean;
  readonly rule?: string;
  readonly example?: string;
  readonly why: string;
  readonly error?: string;
  readonly breaks: readonly SuspectBreakView[];
  /** The ruleset it would go back to (the change's previous desired revision; the drift's desired one). */
  readonly desiredRevision: number | null;
}

export interface SuspectsView {
  readonly incident: number;
  readonly startedAt: string;
  readonly window: { readonly from: string; readonly to: string };
  readonly flows: readonly FailingFlow[];
  readonly verdict: 'suspected' | 'none';
  readonly text: string;
  readonly candidates: readonly SuspectCandidateView[];
  /** Changes and drifts in the window that could not be read (a ruleset too long to keep, or unparsable). */
  readonly skipped: readonly { readonly id: string; readonly host: string; readonly why: string }[];
}

/** The hosts an incident is about: its own, else its services' hosts, else every host. */
export function incidentHosts(inc: Incident, config: RampartConfig): string[] {
  if (inc.hosts.length > 0) return [...inc.hosts];
  const ofServices = config.services.filter((s) => inc.services.includes(s.name)).flatMap((s) => s.hosts);
  if (ofServices.length > 0) return [...new Set(ofServices)];
  return config.hosts.map((h) => h.name);
}

/**
 * The flows the incident sees failing: each of its services' public ports from anywhere and internal ports from
 * their sources (the services running on its hosts when it names none; every service when it names neither).
 */
export function failingFlows(inc: Incident, config: RampartConfig): FailingFlow[] {
  const named = config.services.filter((s) => inc.services.includes(s.name));
  const onHosts = config.services.filter((s) => s.hosts.some((h) => inc.hosts.includes(h)));
  const services = named.length > 0 ? named : onHosts.length > 0 ? onHosts : config.services;
  const flows: FailingFlow[] = [];
  const port = (p: { from: number; to: number }) => (p.from === p.to ? p.from : `${p.from}-${p.to}`);
  for (const s of services) {
    // To the service's own addresses: its hosts' and its public (load balancer) ones.
    const addresses = config.hosts.filter((h) => s.hosts.includes(h.name)).flatMap((h) => h.addresses);
    const to = [...new Set([...(s.address ?? []), ...addresses])];
    const dest = to.length > 0 ? { to } : {};
    for (const proto of ['tcp', 'udp', 'sctp'] as const) {
      const pub = s.public.filter((p) => p.proto === proto);
      if (pub.length > 0) flows.push({ service: s.name, proto, ...dest, ports: pub.map(port), from: 'anywhere' });
      for (const i of s.internal ?? []) {
        const ports = i.ports.filter((p) => p.proto === proto);
        if (ports.length > 0)
          flows.push({ service: s.name, proto, ...dest, ports: ports.map(port), from: [...i.from] });
      }
    }
  }
  return flows;
}

interface Gathered {
  readonly candidates: SuspectCandidate[];
  readonly meta: Map<string, { changeId?: number; desiredRevision: number | null }>;
  readonly skipped: { id: string; host: string; why: string }[];
  /** What identifies the candidate set (for the cache). */
  readonly key: string;
}

const EMPTY_RULESET = 'table inet rampart_empty {\n}\n';

function parse(text: string, format: string, file: string): Ruleset {
  return parseRuleset(text, file, { format: format as 'nft-text' | 'nft-json' | 'iptables-save' });
}

/** The changes and drifts on `hosts` with their time in [from, to]. */
export async function gatherCandidates(
  store: StoreReader,
  hosts: readonly string[],
  from: string,
  to: string,
  /** When each host came back in sync (host.in-sync events): a drift over before `startedAt` explains nothing. */
  inSync: readonly { readonly host: string; readonly at: string }[] = [],
  startedAt: string = to,
): Promise<Gathered> {
  const candidates: SuspectCandidate[] = [];
  const meta: Gathered['meta'] = new Map();
  const skipped: Gathered['skipped'] = [];
  const keys: string[] = [];
  const inWindow = (at: string) => at >= from && at <= to;
  for (const host of hosts) {
    // Rampart's changes: every desired revision of the host made by a change within the window.
    const current = await store.getDesired(host);
    for (let rev = current?.revision ?? 0; rev >= 1; rev--) {
      const d = rev === current?.revision ? current : await store.getDesiredRevision(host, rev);
      if (!d || d.updatedAt < from) break;
      if (d.changeId === null || !inWindow(d.updatedAt)) continue;
      const change = await store.getChange(d.changeId);
      const id = String(d.changeId);
      const prev = rev > 1 ? await store.getDesiredRevision(host, rev - 1) : undefined;
      keys.push(`change:${id}:${host}@${rev}`);
      try {
        const before = prev
          ? parse(prev.ruleset, prev.format, `desired:${host}@${prev.revision}`)
          : parse(EMPTY_RULESET, 'nft-text', `desired:${host}@0`);
        const after = parse(d.ruleset, d.format, change ? `change-${d.changeId}` : `desired:${host}@${rev}`);
        const reviews = change ? await store.listReviews(change.id) : [];
        // When it began to take effect: its apply queued the host's job (the revision is stored once confirmed).
        const job = (await store.listJobs({ changeId: d.changeId, host })).filter((j) => j.state === 'done').at(-1);
        candidates.push({
          id,
          kind: 'change',
          host,
          at: job && job.createdAt < d.updatedAt ? job.createdAt : d.updatedAt,
          author: change?.author ?? null,
          approvers: reviews.filter((r) => r.verdict === 'approve' && !r.voidedAt).map((r) => r.reviewer),
          reason: change?.reason ?? null,
          before,
          after,
        });
        meta.set(`${id}|${host}`, { changeId: d.changeId, desiredRevision: prev?.revision ?? null });
      } catch (e) {
        skipped.push({ id, host, why: e instanceof Error ? e.message : String(e) });
      }
    }
  }
  // Out-of-band edits: the live rulesets the agents reported while their host drifted (the same one once).
  const seen = new Set<string>();
  for (const s of await store.driftSnapshots({ from, to, hosts })) {
    const id = `drift:${s.id}`;
    // A drift that was over before the incident began is no suspect; it must not hide the same edit made again later
    // (the same bad ruleset put back after a fix), so it is set aside before the same-edit dedupe below.
    const over = inSync.find((e) => e.host === s.host && e.at > s.at && e.at <= startedAt);
    if (over) {
      keys.push(id);
      skipped.push({ id, host: s.host, why: `back in sync at ${over.at}, before the incident began` });
      continue;
    }
    const dedupe = `${s.host}|${s.desiredRevision}|${s.liveSha256}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    keys.push(id);
    if (s.live === null) {
      skipped.push({ id, host: s.host, why: `the live ruleset (${s.liveBytes} bytes) was too long to keep` });
      continue;
    }
    const desired = await store.getDesiredRevision(s.host, s.desiredRevision);
    if (!desired) {
      skipped.push({ id, host: s.host, why: `desired revision ${s.desiredRevision} is gone` });
      continue;
    }
    try {
      candidates.push({
        id,
        kind: 'drift',
        host: s.host,
        at: s.at,
        author: null,
        approvers: [],
        reason: s.summary,
        before: parse(desired.ruleset, desired.format, `desired:${s.host}@${desired.revision}`),
        after: parse(s.live, s.format, `live:${s.host}`),
      });
      meta.set(`${id}|${s.host}`, { desiredRevision: desired.revision });
    } catch (e) {
      skipped.push({ id, host: s.host, why: e instanceof Error ? e.message : String(e) });
    }
  }
  return { candidates, meta, skipped, key: keys.sort().join(',') };
}

/** A ranked candidate as data a client can print (the founding replay in test/incident/founding.ts uses it too). */
export function candidateView(
  c: RankedCandidate,
  meta: ReadonlyMap<string, { changeId?: number; desiredRevision: number | null }> = new Map(),
): SuspectCandidateView {
  const m = meta.get(`${c.id}|${c.host}`);
  return {
    id: c.id,
    kind: c.kind,
    ...(m?.changeId !== undefined ? { changeId: m.changeId } : {}),
    host: c.host,
    at: c.at,
    author: c.author,
    approvers: c.approvers,
    reason: c.reason,
    suspected: c.suspected,
    ...(c.rule !== undefined ? { rule: c.rule } : {}),
    ...(c.example !== undefined ? { example: c.example } : {}),
    why: c.why,
    ...(c.error !== undefined ? { error: c.error } : {}),
    breaks: c.breaks.map((b) => ({
      hook: b.hook,
      flow: b.flow,
      ...(b.intent !== undefined ? { intent: b.intent } : {}),
      to: b.to,
      example: b.example,
      droppedBy: b.droppedBy.map(formatDecider),
      acceptedBefore: b.acceptedBefore.map(formatDecider),
      share: share(b.packets, b.flowPackets),
    })),
    desiredRevision: m?.desiredRevision ?? null,
  };
}

/** The top suspect in one sentence for the timeline and the postmortem: what, where, the rule, who. */
/**
 * What a suspect is as a cause, whichever host it was found on: a change by its id, an edit by hand by the rule that
 * now drops the flow (its text without file:line). One incident notes each cause once on its timeline.
 */
export function suspectCause(c: SuspectCandidateView): string {
  return c.kind === 'change' ? `change:${c.changeId}` : `drift:${c.rule?.replace(/^\S+:\d+: /, '') ?? c.id}`;
}

export function suspectSentence(v: SuspectsView): string | undefined {
  const top = v.candidates[0];
  if (!top?.suspected) return undefined;
  // The same kind of cause on several hosts (one edit by hand on web1 and web2, one change to a group) is one cause.
  const same = v.candidates.filter(
    (c) =>
      c.suspected &&
      c.kind === top.kind &&
      (top.kind === 'drift' || c.changeId === top.changeId) &&
      c.rule?.replace(/^\S+:\d+: /, '') === top.rule?.replace(/^\S+:\d+: /, ''),
  );
  const hosts = [...new Set(same.map((c) => c.host))];
  const on = hosts.join(' and ');
  const what =
    top.kind === 'drift'
      ? `an out-of-band edit of the firewall (drift) on ${on}`
      : `change ${top.changeId} on ${on}${top.reason ? ` ("${top.reason}")` : ''}`;
  const b = top.breaks[0];
  const who =
    top.kind === 'drift'
      ? 'made outside Rampart, so without review'
      : `proposed by ${top.author ?? 'unknown'}, approved by ${top.approvers.length > 0 ? top.approvers.join(', ') : 'nobody'}`;
  return `${what} turns ${b ? `${b.share} of ${b.flow}` : 'the failing flows'} from accept to ${b?.to ?? 'drop'}, now decided by ${top.rule ?? 'the chain policy'} (e.g. ${top.example ?? 'a new connection'}); ${who}.`;
}

export interface SuspectInput {
  readonly incident: Incident;
  readonly config: RampartConfig;
  readonly lookBackMs: number;
  readonly nowIso: string;
}

/** The incident's suspects, cached per incident, start and candidate set. */
export class SuspectFinder {
  private readonly cache = new Map<number, { key: string; view: SuspectsView }>();

  constructor(private readonly store: Store) {}

  async find(input: SuspectInput): Promise<SuspectsView> {
    const { incident: inc, config } = input;
    const from = new Date(Date.parse(inc.startedAt) - input.lookBackMs).toISOString();
    const to = inc.resolvedAt ?? input.nowIso;
    const hosts = incidentHosts(inc, config);
    const flows = failingFlows(inc, config);
    const { events } = await this.store.incidents.timelineSources(from, to);
    const inSync = events
      .filter((e) => e.kind === 'host.in-sync')
      .map((e) => ({ host: e.subject.replace(/^host:/, ''), at: e.at }));
    const g = await gatherCandidates(this.store, hosts, from, to, inSync, inc.startedAt);
    const key = `${inc.startedAt}|${JSON.stringify(flows)}|${g.key}`;
    const hit = this.cache.get(inc.id);
    if (hit && hit.key === key) return hit.view;
    const intents = config.intents ?? [];
    const r =
      flows.length === 0
        ? {
            verdict: 'none' as const,
            text: `incident ${inc.id} names no service with ports: no failing flow to judge the changes by; name its services (or hosts).`,
            candidates: [],
          }
        : // The services run on the hosts: their packets take the input hook (a host routing traffic elsewhere is not
          // what the incident's flows are about).
          findSuspects(flows, g.candidates, inc.startedAt, { intents, hooks: ['input'] });
    const view: SuspectsView = {
      incident: inc.id,
      startedAt: inc.startedAt,
      window: { from, to },
      flows,
      verdict: r.verdict,
      text: r.text,
      candidates: r.candidates.map((c) => candidateView(c, g.meta)),
      skipped: g.skipped,
    };
    this.cache.set(inc.id, { key, view });
    return view;
  }
}
