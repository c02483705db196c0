/**
 * The agent protocol (issue 6): what `rampart agent` and `rampart serve` say to each other. The agent always dials
 * out (the server never needs to reach the host); every call carries an agent token (role `agent`, name = the host
 * it speaks for), and the server refuses an agent anything about another host.
 *
 *   GET  /api/v1/agent/hello                -> { host, firewall, managedTables }
 *   GET  /api/v1/agent/next                 -> { job: AgentJob | null, probes?: ProbeRequest[] }
 *                                           the host's next job when it is its turn, and probes to run for others
 *   POST /api/v1/agent/probes/:id           <- { results: HealthResult[] }   a peer probe's answer
 *   POST /api/v1/agent/jobs/:id/events      <- AgentEvent                 a step of the safe apply, for the timeline
 *   POST /api/v1/agent/jobs/:id/confirm     <- ConfirmRequest -> ConfirmAnswer
 *                                           the server probes the host from its own vantage; confirmed = commit
 *   POST /api/v1/agent/report               <- AgentReport                live ruleset + listening sockets (drift)
 *   GET  /api/v1/agent/traffic-sources      -> TrafficSources             what to measure on this host (issue 14, §3)
 *   POST /api/v1/agent/traffic              <- { samples: TrafficSample[] } -> TrafficAck
 *                                           incoming request counts per service, source and window
 *
 * Safe apply on the agent: verify the job -> persist the pending state (with the snapshot) -> apply atomically ->
 * local health checks -> ask for confirmation until the deadline -> on yes: commit (clear pending, event
 * `committed`); on no, a failed check or no answer by the deadline: restore the snapshot (event `rolled-back`).
 * An agent that starts with a pending state on disk restores its snapshot first.
 */
import type { HealthCheck } from '../config/types.js';
import type { RulesetFormat } from '../store/types.js';

export interface AgentJob {
  readonly id: number;
  readonly changeId: number;
  readonly planId: number;
  readonly host: string;
  /** Position in the rollout (0 = canary). */
  readonly step: number;
  readonly firewall: 'nftables' | 'iptables';
  /** What the agent may replace: `inet filter` (nftables) or `filter` (iptables); nothing else is touched. */
  readonly managedTables: readonly string[];
  readonly format: RulesetFormat;
  readonly ruleset: string;
  /** Hex SHA-256 of `ruleset` as approved (the agent recomputes it). */
  readonly rulesetSha256: string;
  /** What the agent checks before it applies anything (the server checked it too). */
  readonly change: { readonly state: string; readonly hosts: readonly string[]; readonly emergency: boolean };
  readonly plan: { readonly id: number; readonly stale: boolean; readonly approved: boolean };
  /** Health checks of the services that run on this host (local: the agent connects to 127.0.0.1). */
  readonly health: readonly HealthCheck[];
  readonly confirmTimeoutSeconds: number;
}

export const AGENT_EVENT_KINDS = [
  'refused', // the job failed verification: nothing was applied
  'pending-saved', // snapshot taken and the pending state persisted
  'applied', // the new ruleset is in force
  'health-ok', // local health checks passed
  'health-failed', // local health checks failed: rollback follows
  'confirm-timeout', // no confirmation by the deadline: rollback follows
  'rolled-back', // the snapshot is back in force
  'rollback-failed', // the snapshot could not be restored (operator attention)
  'committed', // confirmed and committed: the new ruleset stays
  'recovered', // on start: a pending apply from before a crash was rolled back
] as const;
export type AgentEventKind = (typeof AGENT_EVENT_KINDS)[number];

export interface AgentEvent {
  readonly kind: AgentEventKind;
  /** When it happened on the agent (ISO 8601). */
  readonly at: string;
  readonly detail: string;
}

export interface HealthResult {
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface ConfirmRequest {
  readonly local: readonly HealthResult[];
}

export interface ConfirmAnswer {
  readonly confirmed: boolean;
  /** The server's own probes of the host through its firewall. */
  readonly remote: readonly HealthResult[];
  readonly reason: string;
}

/** A probe the server asks a peer's agent to run against another host (a second vantage point). */
export interface ProbeRequest {
  readonly id: string;
  /** The host whose services are probed, and the address to probe. */
  readonly target: string;
  readonly address: string;
  readonly checks: readonly HealthCheck[];
}

export interface ListeningSocketReport {
  readonly proto: 'tcp' | 'udp';
  readonly address: string;
  readonly port: number;
}

export interface AgentReport {
  readonly at: string;
  readonly firewall: 'nftables' | 'iptables';
  /** The managed tables as the kernel has them: `nft -j list table ...` JSON or iptables-save text. */
  readonly live: { readonly format: RulesetFormat; readonly text: string };
  readonly sockets: readonly ListeningSocketReport[];
  /** The agent's own state: idle, or applying job N. */
  readonly state: string;
}

/** Where an agent reads a service's incoming request rate (issue 14, §3): from the service's `traffic:` config. */
export type TrafficSourceKind = 'access-log' | 'counters' | 'haproxy';

export interface TrafficAssignment {
  readonly service: string;
  /** Access logs to follow (rotation by rename or truncation; offsets persisted across restarts). */
  readonly logs: readonly { readonly path: string; readonly format: 'combined' | 'haproxy' }[];
  /** Read the counters of the rules that accept these ports (read-only: the agent never adds a counter). */
  readonly counters: readonly { readonly proto: 'tcp' | 'udp' | 'sctp'; readonly from: number; readonly to: number }[];
  /** HAProxy's stats socket on this host: `show stat` of this backend. */
  readonly haproxy?: { readonly socket: string; readonly backend: string };
  /**
   * Access-log requests to these paths are not counted: the service's HTTP health checks (HAProxy's and the
   * monitors' probes) and its `traffic.ignore-paths`. Absent from an older server: every request counts.
   */
  readonly ignorePaths?: readonly string[];
}

/** GET /agent/traffic-sources: the services measured on this host and the window length (5 s by default). */
export interface TrafficSources {
  readonly windowMs: number;
  readonly services: readonly TrafficAssignment[];
}

/**
 * What arrived in one window: `requests` (and 5xx `errors` where the source tells) between `start` and
 * `start + ms` (epoch ms; `start` is a multiple of `ms`). For `counters` they are new connections accepted by the
 * rules (packets of the accept rules after the established/related accept). An agent sends each (service, source)'s
 * windows in time order once they closed; the server ignores a window at or before the last it stored for that
 * (host, service, source), so resending a batch after a lost answer counts nothing twice.
 */
export interface TrafficSample {
  readonly service: string;
  readonly source: TrafficSourceKind;
  readonly start: number;
  readonly ms: number;
  readonly requests: number;
  readonly errors?: number;
}

export interface TrafficAck {
  readonly accepted: number;
  readonly duplicates: number;
}
