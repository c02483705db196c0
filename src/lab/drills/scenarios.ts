/**
 * Drills as data (issue 18 §1): each scenario says how the fault is injected into the shop lab, what the scripted
 * responder does about it, how the lab is put back, and which alerts Rampart must raise (and that no others fire).
 * Pure: no I/O here; src/lab/drills/runner.ts drives the lab from these descriptions and
 * src/lab/drills/score.ts scores what it observed.
 */
import { BASELINE_RULESET } from '../rampart-lab.js';
import { SHOP_ADDRESSES } from '../shop-lab.js';

/** The web servers' ruleset after the founding change (test/fixtures/nftables/founding-outage.nft, same text). */
export const FOUNDING_OUTAGE_RULESET = `flush ruleset

table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiifname "lo" accept
\t\ttcp dport 22 accept
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}

\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}
`;

/**
 * The customers of partial-block: the client namespace's own address and four more in the upper half of the lab's
 * /24. The rule drops that half (10.88.0.128/25): four of the five sources, 80% of the customers, as in the
 * postmortem. The server (10.88.0.5) and the probe in the client namespace (10.88.0.10) are not in it, as the
 * postmortem's monitoring would not have been.
 */
export const PARTIAL_CLIENTS = [SHOP_ADDRESSES.client, '10.88.0.140', '10.88.0.170', '10.88.0.200', '10.88.0.230'];
export const PARTIAL_BLOCKED = '10.88.0.128/25';

/** A rule on the load balancer that drops a share of the customers' sources (set by hand, the lb is not managed). */
export const PARTIAL_BLOCK_RULESET = `table inet drill {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr ${PARTIAL_BLOCKED} tcp dport 80 drop comment "drill: partial-block"
\t}
}
`;

export const DRILL_RULESETS = {
  baseline: BASELINE_RULESET,
  'founding-outage': FOUNDING_OUTAGE_RULESET,
  'partial-block': PARTIAL_BLOCK_RULESET,
} as const;
export type DrillRuleset = keyof typeof DRILL_RULESETS;

export type DrillHost = 'web1' | 'web2' | 'lb';
export type DrillProcess = 'web2-app' | 'haproxy';
/** The certificates of the lab's TLS front end (made with openssl at lab start): 90 days, or 5 days left. */
export type DrillCertificate = 'renewed' | 'expiring';

/** One thing done to the lab. */
export type DrillAction =
  /** `nft -f` by hand in a host's namespace (no Rampart change): `flush` first replaces the whole ruleset. */
  | { readonly kind: 'nft'; readonly hosts: readonly DrillHost[]; readonly ruleset: DrillRuleset }
  /** `nft delete table inet <table>` by hand. */
  | { readonly kind: 'nft-delete-table'; readonly host: DrillHost; readonly table: string }
  | { readonly kind: 'stop'; readonly process: DrillProcess }
  /** Puts a certificate on HAProxy's TLS front end through its runtime API (no restart: customers unaffected). */
  | { readonly kind: 'certificate'; readonly cert: DrillCertificate }
  | { readonly kind: 'start'; readonly process: DrillProcess }
  /**
   * A change through Rampart for the web group: proposed by alice, approved by bob, applied; `override` has the admin
   * override a blocked plan first, `emergency` applies it flagged as an emergency.
   */
  | {
      readonly kind: 'change';
      readonly ruleset: DrillRuleset;
      readonly reason: string;
      readonly override?: string;
      readonly emergency?: string;
    };

/**
 * What the incident's suspects route (GET /incidents/:id/suspects) must name for the cause to count as named: a
 * drift (an edit by hand) suspected on every one of `hosts`, or the change the drill pushed suspected on `hosts`; or
 * `none` with why the route cannot name this cause (it judges firewall changes and drift of managed hosts), and then
 * it must not suspect anything either (a false suspect sends the responder the wrong way).
 */
export type ExpectedSuspect =
  | { readonly kind: 'drift' | 'change'; readonly hosts: readonly DrillHost[] }
  | { readonly kind: 'none'; readonly why: string };

/** An alert the scenario expects: its name and the labels it must carry (a subset). */
export interface ExpectedAlert {
  readonly alertname: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface DrillScenario {
  readonly name: string;
  readonly title: string;
  /** What it replays and what a good response looks like, for `rampart drill list` and the report. */
  readonly description: string;
  /** The fault. */
  readonly inject: readonly DrillAction[];
  /**
   * What the scripted responder runs once it has acknowledged the page (the suggested remediation); empty when the
   * lab recovers by itself (Rampart's own rollback, HAProxy's failover).
   */
  readonly remediate: readonly DrillAction[];
  /** Puts the lab back as it was before the drill, whatever happened (run even when the drill failed). */
  readonly cleanup: readonly DrillAction[];
  readonly expect: {
    /** Alerts that must fire; any other alert firing during the drill is unexpected (see `tolerated`). */
    readonly alerts: readonly ExpectedAlert[];
    /**
     * Alerts that may fire on the way without counting against the drill (a monitor DEGRADED for a moment on the way
     * DOWN; the responder's own emergency change).
     */
    readonly tolerated?: readonly ExpectedAlert[];
    /** Whether the steady customers are expected to see failures at all. */
    readonly usersAffected: boolean;
    /**
     * When users are unaffected: the failed share still accepted (default 0), e.g. the requests in flight on a
     * process that is killed, which HAProxy cannot retry once they were sent.
     */
    readonly maxFailedShare?: number;
    /** The component a correct suspected cause names (a host's ruleset, a process). */
    readonly cause: string;
    /** What the suspects route must name (see ExpectedSuspect). */
    readonly suspect: ExpectedSuspect;
  };
  /** The steady customers' source addresses (default: the client namespace's own). */
  readonly clients?: readonly string[];
  /** Needs the lab's traffic counting (access logs followed by the agents, a baseline before the fault). */
  readonly needsTraffic?: boolean;
  /** Why it cannot run in this lab yet; `rampart drill run` reports it as skipped with this reason. */
  readonly unavailable?: string;
}

const DOWN_TOLERATED: readonly ExpectedAlert[] = [{ alertname: 'MonitorDegraded', labels: { service: 'shop' } }];
const SHOP_DOWN: readonly ExpectedAlert[] = [
  { alertname: 'ServiceDown', labels: { service: 'shop' } },
  { alertname: 'MonitorDown', labels: { service: 'shop', monitor: 'shop' } },
];

export const DRILL_SCENARIOS: readonly DrillScenario[] = [
  {
    name: 'founding-outage',
    title: 'The founding outage: input policy drop set by hand on both web servers',
    description:
      "The postmortem as it happened: someone edits /etc/nftables.conf on web1 and web2 by hand (input policy drop, the shop's accept gone) without a Rampart change. Expected: the shop DOWN from every vantage point, both hosts' drift, a page within seconds; the responder restores the baseline by hand on both hosts.",
    inject: [{ kind: 'nft', hosts: ['web1', 'web2'], ruleset: 'founding-outage' }],
    // By hand, as the postmortem's network team did: a change restoring the baseline waits in the rollout's
    // redundancy guard while every backend of the shop is down (web1 may not go while web2 fails, and web2 not
    // while web1 does), so the normal change path cannot mitigate an outage of the whole group.
    remediate: [{ kind: 'nft', hosts: ['web1', 'web2'], ruleset: 'baseline' }],
    cleanup: [{ kind: 'nft', hosts: ['web1', 'web2'], ruleset: 'baseline' }],
    expect: {
      alerts: [
        ...SHOP_DOWN,
        { alertname: 'MonitorDown', labels: { service: 'shop', host: 'web1' } },
        { alertname: 'MonitorDown', labels: { service: 'shop', host: 'web2' } },
      ],
      tolerated: [
        ...DOWN_TOLERATED,
        // the agents see the edit by hand as drift from the desired ruleset, when they report before the fix
        { alertname: 'FirewallDrift' },
        { alertname: 'RedundancyDegraded', labels: { service: 'shop' } },
      ],
      usersAffected: true,
      cause: 'the input chain of web1 and web2 (policy drop, no accept for tcp/80)',
      suspect: { kind: 'drift', hosts: ['web1', 'web2'] },
    },
  },
  {
    name: 'forced-change',
    title: 'The same ruleset pushed through Rampart as an emergency with an overridden block',
    description:
      'The founding ruleset proposed as a change: the plan blocks it, an admin overrides the block and it is applied as an emergency (the fault is the apply). Expected: the canary (web1) fails its health check and its agent restores the last good ruleset by itself; web2 never gets it; the override, the emergency and the rollback are alerted. Users are briefly affected: the requests HAProxy sends to web1 until its checks take web1 out fail.',
    inject: [
      {
        kind: 'change',
        ruleset: 'founding-outage',
        reason: 'drill: allow traffic only from trusted sources',
        override: 'drill: the network team insists',
        emergency: 'drill: forced through',
      },
    ],
    remediate: [],
    cleanup: [{ kind: 'nft', hosts: ['web1', 'web2'], ruleset: 'baseline' }],
    expect: {
      alerts: [{ alertname: 'ChangeRolledBack' }, { alertname: 'ChangeOverride' }],
      tolerated: [
        { alertname: 'ChangeEmergency' },
        { alertname: 'MonitorDown', labels: { service: 'shop', host: 'web1' } },
        { alertname: 'MonitorDegraded', labels: { service: 'shop' } },
        { alertname: 'RedundancyDegraded', labels: { service: 'shop' } },
        // the requests HAProxy sends to web1 before its checks take it out fail, the public probe's among them
        // (seen on an idle machine: the shop DOWN for a moment, 6% of the customers' requests failed)
        ...SHOP_DOWN,
      ],
      usersAffected: true,
      cause: 'the change forced through (its rollback on web1)',
      // Seen in the lab: the suspects route never names it. The agent restores the last good ruleset before the
      // change becomes web1's desired revision (that is stored once confirmed), so the route has no change to judge;
      // the ChangeRolledBack alert names the change itself.
      suspect: {
        kind: 'none',
        why: 'the change was rolled back on web1 before it became its desired ruleset, so the suspects route has no change to judge (ChangeRolledBack names it)',
      },
    },
  },
  {
    name: 'backend-down',
    title: "web2's shop process stopped",
    description:
      "web2's shop app stops. Expected: redundancy degraded (one backend of two) and web2's monitor DOWN, while HAProxy keeps every customer served by web1; the responder starts the process again.",
    inject: [{ kind: 'stop', process: 'web2-app' }],
    remediate: [{ kind: 'start', process: 'web2-app' }],
    cleanup: [{ kind: 'start', process: 'web2-app' }],
    expect: {
      alerts: [
        { alertname: 'RedundancyDegraded', labels: { service: 'shop' } },
        { alertname: 'MonitorDown', labels: { service: 'shop', host: 'web2' } },
      ],
      tolerated: [{ alertname: 'MonitorDegraded', labels: { service: 'shop', host: 'web2' } }],
      usersAffected: false,
      maxFailedShare: 0.01,
      cause: "web2's shop process",
      suspect: { kind: 'none', why: 'a stopped process, not a firewall change or drift' },
    },
  },
  {
    name: 'lb-down',
    title: 'HAProxy stopped',
    description:
      'The load balancer stops: the shop is down for everyone although every web server is healthy. Expected: the public monitor DOWN and the service DOWN, the backends UP; the responder starts HAProxy again.',
    inject: [{ kind: 'stop', process: 'haproxy' }],
    remediate: [{ kind: 'start', process: 'haproxy' }],
    cleanup: [{ kind: 'start', process: 'haproxy' }],
    expect: {
      alerts: [{ alertname: 'MonitorDown', labels: { service: 'shop', monitor: 'shop' } }],
      tolerated: [
        ...DOWN_TOLERATED,
        { alertname: 'ServiceDown', labels: { service: 'shop' } },
        // the TLS front end is HAProxy too
        { alertname: 'MonitorDown', labels: { service: 'shop', monitor: 'shop-tls' } },
      ],
      usersAffected: true,
      cause: 'HAProxy on lb',
      suspect: { kind: 'none', why: 'a stopped process, not a firewall change or drift' },
    },
  },
  {
    name: 'cert-expiring',
    title: "The shop's certificate near expiry",
    description:
      "HAProxy's TLS front end (https://10.88.0.2/) gets a certificate with 5 days left, as when a renewal silently failed weeks ago. Expected: TlsCertificateExpiring (warning, to the team, nobody woken), users unaffected; the responder puts the renewed certificate in place (HAProxy's runtime API, no restart).",
    inject: [{ kind: 'certificate', cert: 'expiring' }],
    remediate: [{ kind: 'certificate', cert: 'renewed' }],
    cleanup: [{ kind: 'certificate', cert: 'renewed' }],
    expect: {
      alerts: [{ alertname: 'TlsCertificateExpiring', labels: { service: 'shop', monitor: 'shop-tls' } }],
      usersAffected: false,
      cause: "the shop's certificate",
      suspect: {
        kind: 'none',
        why: 'the alert itself names the certificate; the suspects route judges firewall changes (and a warning declares no incident)',
      },
    },
  },
  // Last, so `rampart drill run --all` plays it last: it needs a baseline of customers first (the traffic detector
  // expects their rate once most of the last minute was theirs), and once the lab has one, its customers leaving at
  // the end look like a drop to the detector too, which would be an unexpected TrafficDrop in the next drill.
  {
    name: 'partial-block',
    title: "A rule dropping the upper half of the customers' addresses",
    description: `A rule on the load balancer drops ${PARTIAL_BLOCKED} (four of five customer addresses, 80% of the requests): the partial drop the postmortem's 80% was. The monitors, whose vantage points are not in that range, stay UP; the traffic-drop detector on the web servers' access logs must see it. The responder deletes the rule by hand (the load balancer is not managed by Rampart).`,
    inject: [{ kind: 'nft', hosts: ['lb'], ruleset: 'partial-block' }],
    remediate: [{ kind: 'nft-delete-table', host: 'lb', table: 'drill' }],
    cleanup: [{ kind: 'nft-delete-table', host: 'lb', table: 'drill' }],
    expect: {
      alerts: [{ alertname: 'TrafficDrop', labels: { service: 'shop' } }],
      usersAffected: true,
      cause: 'the rule dropping 10.88.0.128/25 on the load balancer',
      suspect: {
        kind: 'none',
        why: 'the rule is on the load balancer, which Rampart does not manage: no change or drift of it to judge',
      },
    },
    clients: PARTIAL_CLIENTS,
    needsTraffic: true,
  },
];

export function findScenario(name: string): DrillScenario | undefined {
  return DRILL_SCENARIOS.find((s) => s.name === name);
}

/** Does `labels` carry everything `want` asks for? */
export function alertMatches(want: ExpectedAlert, labels: Readonly<Record<string, string>>): boolean {
  if (labels.alertname !== want.alertname) return false;
  return Object.entries(want.labels ?? {}).every(([k, v]) => labels[k] === v);
}
