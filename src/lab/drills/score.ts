/**
 * Scoring a drill (issue 18 §2), pure: what the runner observed (alerts with their start times, the pages the
 * receiver accepted, the suspected causes named, the responder's actions, the steady customers' failures) in, the
 * score out. The clock is an argument: a drill scored before it recovered counts "not yet" up to `now`.
 */
import { alertMatches, type DrillScenario, type ExpectedAlert, type ExpectedSuspect } from './scenarios.js';

export interface ObservedAlert {
  readonly labels: Readonly<Record<string, string>>;
  /** Epoch ms when it began firing. */
  readonly startsAt: number;
}

/** One notification the receiver accepted (before its 200). */
export interface ObservedPage {
  readonly at: number;
  /** The receiver's path or name (`/team`, `/alice`). */
  readonly receiver: string;
  /** The notification's idempotency key (X-Rampart-Id): the same key twice at one receiver is a duplicate. */
  readonly id: string;
  readonly status: 'firing' | 'resolved';
}

export interface SuspectAnswer {
  readonly at: number;
  readonly correct: boolean;
  readonly named?: readonly string[];
}

/** The steady customers' requests, as the steady client reports them (src/lab/steady-client.ts). */
export interface ObservedTraffic {
  readonly startedAt: number;
  readonly endedAt: number;
  /** Requests per second of all customers together. */
  readonly rate: number;
  readonly sent: number;
  readonly failed: number;
  /** Send time of each failed request. */
  readonly failuresAt: readonly number[];
}

export interface DrillObservation {
  readonly scenario: string;
  /** When the fault was injected (the first inject action began). */
  readonly faultAt: number;
  readonly alerts: readonly ObservedAlert[];
  readonly pages: readonly ObservedPage[];
  /**
   * The incident's suspects route (GET /incidents/:id/suspects) as the drill polled it after the fault: when each
   * answer came, whether it named the scenario's expected suspect (for a scenario expecting none: whether it named
   * nothing), and what it suspected (`drift on web1`, `change 7 on web1`). Undefined: not observed (not measured).
   */
  readonly suspects?: readonly SuspectAnswer[];
  /**
   * Who responded: the scripted responder (default), or a person (`--interactive`: their remediation's end is not
   * seen, only the customers' recovery).
   */
  readonly responder?: 'scripted' | 'person';
  /** When the responder acknowledged the page (a person: the first acknowledgement of the drill's alerts). */
  readonly ackedAt?: number;
  /** When the responder's remediation ended (or undefined: none ran, or the lab recovered by itself). */
  readonly mitigatedAt?: number;
  readonly traffic: ObservedTraffic;
  /** When the drill stopped observing. */
  readonly endedAt: number;
}

/** A duration in ms, or why there is none. */
export type Measured = number | 'not measured' | 'never' | 'not applicable';

export interface DrillScore {
  readonly scenario: string;
  /** fault → first alert fired. */
  readonly detect: Measured;
  /** fault → first page accepted by a receiver. */
  readonly notify: Measured;
  /** fault → the correct cause named by the suspects route ('not applicable' when it cannot name it: see causeNote). */
  readonly cause: Measured;
  /** Why the cause is not applicable (the scenario's reason), or what the suspects route named instead. */
  readonly causeNote?: string;
  /** fault → the responder's acknowledgement. */
  readonly ack: Measured;
  /** fault → the remediation done. */
  readonly mitigate: Measured;
  /** fault → the customers succeed again (the first request after the last failure). */
  readonly recover: Measured;
  readonly failedShare: number;
  readonly usersAffected: boolean;
  readonly notifications: { readonly sent: number; readonly duplicates: number; readonly resolved: number };
  readonly alerts: {
    readonly fired: readonly string[];
    readonly missing: readonly string[];
    readonly unexpected: readonly string[];
  };
  /** What is wrong with the response, in words; empty when the drill passed. */
  readonly problems: readonly string[];
  readonly passed: boolean;
}

/** The founding postmortem's own figures (/work/shared/founding-postmortem.md), for the table. */
export const FOUNDING_FIGURES = {
  detectedBy: 'a customer',
  /** 2:00 PM: a customer complained; the outage began then too (no figure before). */
  notifyMs: 5 * 60_000,
  /** 2:15 PM: the misconfigured rule found. */
  causeMs: 15 * 60_000,
  /** 2:35 PM: the rule corrected (the first attempt, 2:20, failed). */
  mitigateMs: 35 * 60_000,
  /** 2:00 to 4:00 PM. */
  recoverMs: 2 * 3_600_000,
  usersAffectedShare: 0.8,
} as const;

export function alertKey(labels: Readonly<Record<string, string>>): string {
  const rest = Object.entries(labels)
    .filter(([k]) => k !== 'alertname' && k !== 'severity')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}="${v}"`);
  return `${labels.alertname ?? '?'}{${rest.join(',')}}`;
}

const expectedKey = (e: ExpectedAlert): string => alertKey({ alertname: e.alertname, ...(e.labels ?? {}) });

export function scoreDrill(scenario: DrillScenario, obs: DrillObservation, now: number): DrillScore {
  const end = Math.min(obs.endedAt, now);
  const since = (t: number | undefined): number | undefined =>
    t === undefined || t > end ? undefined : Math.max(0, t - obs.faultAt);
  const during = obs.alerts.filter((a) => a.startsAt >= obs.faultAt && a.startsAt <= end);
  const firstAlert = during.length > 0 ? Math.min(...during.map((a) => a.startsAt)) : undefined;
  const firing = obs.pages.filter((p) => p.status === 'firing' && p.at >= obs.faultAt && p.at <= end);
  const firstPage = firing.length > 0 ? Math.min(...firing.map((p) => p.at)) : undefined;

  const seen = new Set<string>();
  let duplicates = 0;
  for (const p of obs.pages.filter((x) => x.at >= obs.faultAt && x.at <= end)) {
    const k = `${p.receiver}\u0000${p.id}`;
    if (seen.has(k)) duplicates++;
    seen.add(k);
  }

  const missing = scenario.expect.alerts.filter((e) => !during.some((a) => alertMatches(e, a.labels))).map(expectedKey);
  const allowed = [...scenario.expect.alerts, ...(scenario.expect.tolerated ?? [])];
  const unexpected = [
    ...new Set(during.filter((a) => !allowed.some((e) => alertMatches(e, a.labels))).map((a) => alertKey(a.labels))),
  ];

  const t = obs.traffic;
  const failures = t.failuresAt.filter((x) => x >= obs.faultAt);
  const usersAffected = failures.length > 0;
  // The request after the last failure succeeded (the client ran on past it), unless the failures ran to its end.
  const step = t.rate > 0 ? 1000 / t.rate : 0;
  const lastFailure = failures.length > 0 ? Math.max(...failures) : undefined;
  const recoveredAt =
    lastFailure === undefined ? undefined : lastFailure + step < t.endedAt - step ? lastFailure + step : undefined;
  const recover: Measured = usersAffected ? (since(recoveredAt) ?? 'never') : 'not applicable';

  const want = scenario.expect.suspect;
  const answers = (obs.suspects ?? []).filter((a) => a.at >= obs.faultAt && a.at <= end);
  const correct = answers.filter((a) => a.correct).map((a) => a.at);
  const wrongly = [...new Set(answers.filter((a) => !a.correct).flatMap((a) => a.named ?? []))];
  const cause: Measured =
    want.kind === 'none'
      ? 'not applicable'
      : obs.suspects === undefined
        ? 'not measured'
        : (since(correct.length > 0 ? Math.min(...correct) : undefined) ?? 'never');
  const causeNote =
    want.kind === 'none'
      ? want.why
      : cause === 'never' && wrongly.length > 0
        ? `named instead: ${wrongly.join(', ')}`
        : undefined;

  const detect = since(firstAlert) ?? 'never';
  const notify = since(firstPage) ?? 'never';
  const problems: string[] = [];
  if (detect === 'never') problems.push('no alert fired');
  if (notify === 'never') problems.push('nobody was paged');
  for (const m of missing) problems.push(`expected alert ${m} did not fire`);
  for (const u of unexpected) problems.push(`unexpected alert ${u} fired`);
  if (duplicates > 0) problems.push(`${duplicates} duplicate notification(s)`);
  if (cause === 'never') {
    problems.push(
      `the suspects route never named ${suspectText(want)}${wrongly.length > 0 ? ` (it named ${wrongly.join(', ')})` : ''}`,
    );
  }
  if (want.kind === 'none' && wrongly.length > 0) {
    problems.push(`the suspects route named ${wrongly.join(', ')} although ${want.why}`);
  }
  const failedShare = t.sent > 0 ? t.failed / t.sent : 0;
  if (scenario.expect.usersAffected && !usersAffected) {
    problems.push('the customers saw no failure although the fault should cut them off (was the fault injected?)');
  }
  if (!scenario.expect.usersAffected && usersAffected && failedShare > (scenario.expect.maxFailedShare ?? 0)) {
    problems.push(
      `${failures.length} customer request(s) failed (${(failedShare * 100).toFixed(2)}%) although users should be unaffected`,
    );
  }
  if (recover === 'never') problems.push('the customers did not succeed again before the drill ended');

  return {
    scenario: scenario.name,
    detect,
    notify,
    cause,
    ...(causeNote !== undefined ? { causeNote } : {}),
    ack: since(obs.ackedAt) ?? 'never',
    mitigate:
      scenario.remediate.length === 0
        ? 'not applicable'
        : obs.responder === 'person'
          ? 'not measured'
          : (since(obs.mitigatedAt) ?? 'never'),
    recover,
    failedShare,
    usersAffected,
    notifications: {
      sent: firing.length,
      duplicates,
      resolved: obs.pages.filter((p) => p.status === 'resolved' && p.at >= obs.faultAt && p.at <= end).length,
    },
    alerts: { fired: [...new Set(during.map((a) => alertKey(a.labels)))].sort(), missing, unexpected },
    problems,
    passed: problems.length === 0,
  };
}

/** A compared stack (Prometheus + Alertmanager) on the same fault: its first firing alert and its first page. */
export interface CompareScore {
  readonly stack: string;
  /** Its settings in words (`scrape 15s, eval 15s, for 1m, group_wait 30s`). */
  readonly settings: string;
  /** fault → the alert firing (Prometheus's own time for it, the page's startsAt). */
  readonly detect: Measured;
  /** fault → its first firing page accepted by the receiver. */
  readonly notify: Measured;
}

/** Scores a compared stack from the pages it sent (pure). */
export function scoreCompare(
  s: {
    readonly name: string;
    readonly scrapeInterval: string;
    readonly evaluationInterval: string;
    readonly for: string;
    readonly groupWait: string;
  },
  faultAt: number,
  endedAt: number,
  pages: readonly { readonly at: number; readonly status: string; readonly startsAt?: number }[],
): CompareScore {
  const firing = pages.filter((p) => p.status === 'firing' && p.at >= faultAt && p.at <= endedAt);
  const first = firing.length > 0 ? Math.min(...firing.map((p) => p.at)) : undefined;
  const starts = firing.flatMap((p) => (p.startsAt !== undefined && p.startsAt >= faultAt ? [p.startsAt] : []));
  return {
    stack: s.name,
    settings: `scrape ${s.scrapeInterval}, eval ${s.evaluationInterval}, for ${s.for}, group_wait ${s.groupWait}`,
    detect: starts.length > 0 ? Math.min(...starts) - faultAt : 'never',
    notify: first !== undefined ? first - faultAt : 'never',
  };
}

/** Rampart next to the compared stacks, one row per scenario (Markdown). */
export function renderCompareTable(
  rows: readonly { readonly score: DrillScore; readonly compare: readonly CompareScore[] }[],
): string {
  const stacks = rows[0]?.compare ?? [];
  const head = [
    'scenario',
    'Rampart detected',
    'Rampart paged',
    ...stacks.flatMap((c) => [`Prometheus ${c.stack} detected`, `Prometheus ${c.stack} paged`]),
  ];
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const body = rows.map((r) =>
    line([
      r.score.scenario,
      formatMeasured(r.score.detect),
      formatMeasured(r.score.notify),
      ...r.compare.flatMap((c) => [formatMeasured(c.detect), formatMeasured(c.notify)]),
    ]),
  );
  const settings = stacks.map((c) => `- Prometheus ${c.stack}: ${c.settings}`);
  return [line(head), line(head.map(() => '---')), ...body, '', ...settings].join('\n');
}

/** The expected suspect in words: `the drift on web1 and web2`, `the change on web1`. */
export function suspectText(want: ExpectedSuspect): string {
  if (want.kind === 'none') return 'nothing';
  return `the ${want.kind} on ${want.hosts.join(' and ')}`;
}

/**
 * Does a suspects answer name the expected suspect? `candidates` are the route's (suspected ones count); `changeId` is
 * the change the drill pushed (kind change). For `none`: correct when nothing is suspected.
 */
export function judgeSuspects(
  want: ExpectedSuspect,
  candidates: readonly {
    readonly kind: string;
    readonly host: string;
    readonly suspected: boolean;
    readonly changeId?: number;
  }[],
  changeId?: number,
): { readonly correct: boolean; readonly named: readonly string[] } {
  const suspected = candidates.filter((c) => c.suspected);
  const named = suspected.map((c) =>
    c.kind === 'change' ? `change ${c.changeId ?? '?'} on ${c.host}` : `${c.kind} on ${c.host}`,
  );
  if (want.kind === 'none') return { correct: suspected.length === 0, named };
  const right = (h: string) =>
    suspected.some(
      (c) =>
        c.kind === want.kind &&
        c.host === h &&
        (want.kind !== 'change' || changeId === undefined || c.changeId === changeId),
    );
  return { correct: want.hosts.every(right), named };
}

export function formatMeasured(m: Measured): string {
  if (typeof m !== 'number') return m;
  if (m < 60_000) return `${(m / 1000).toFixed(1)} s`;
  if (m < 3_600_000) return `${(m / 60_000).toFixed(m % 60_000 === 0 ? 0 : 1)} min`;
  return `${(m / 3_600_000).toFixed(m % 3_600_000 === 0 ? 0 : 1)} h`;
}

const pct = (x: number): string => `${(x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 0)}%`;

/** The score table against the founding postmortem's figures (Markdown, readable as plain text). */
export function renderScoreTable(scores: readonly DrillScore[]): string {
  const head = ['', 'founding postmortem', ...scores.map((s) => s.scenario)];
  const f = FOUNDING_FIGURES;
  const rows: string[][] = [
    ['detected', `by ${f.detectedBy}`, ...scores.map((s) => formatMeasured(s.detect))],
    ['paged', `~${formatMeasured(f.notifyMs)} (by hand)`, ...scores.map((s) => formatMeasured(s.notify))],
    [
      'cause named',
      formatMeasured(f.causeMs),
      ...scores.map((s) => (s.cause === 'not applicable' ? 'n/a' : formatMeasured(s.cause))),
    ],
    ['acknowledged', '-', ...scores.map((s) => formatMeasured(s.ack))],
    ['mitigated', formatMeasured(f.mitigateMs), ...scores.map((s) => formatMeasured(s.mitigate))],
    ['recovered', formatMeasured(f.recoverMs), ...scores.map((s) => formatMeasured(s.recover))],
    ['failed requests', `${pct(f.usersAffectedShare)} of users`, ...scores.map((s) => pct(s.failedShare))],
    ['pages (duplicates)', '-', ...scores.map((s) => `${s.notifications.sent} (${s.notifications.duplicates})`)],
    [
      'alerts as expected',
      '-',
      ...scores.map((s) => (s.alerts.missing.length + s.alerts.unexpected.length === 0 ? 'yes' : 'no')),
    ],
    ['result', '-', ...scores.map((s) => (s.passed ? 'PASS' : 'FAIL'))],
  ];
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const notes = scores.flatMap((s) => (s.causeNote ? [`- cause named, ${s.scenario}: ${s.causeNote}`] : []));
  return [line(head), line(head.map(() => '---')), ...rows.map(line), ...(notes.length ? ['', ...notes] : [])].join(
    '\n',
  );
}
