/**
 * The contract of `rampart.yaml`: what the site declares (hosts, services, admin networks, intents) and how the
 * audit is tuned. Parsed and validated by src/config/load.ts (zod schema, errors with file:line:column); used by
 * `rampart audit` now and by the server (issue 5: change policy, health checks, backends) later, which extends
 * these types with optional fields only.
 */

import type { Severity } from '../analysis/audit/types.js';
import type { Intent } from '../analysis/intents.js';
import type { BlockerKind } from '../change/types.js';
import type { IncidentPolicy } from '../incident/lifecycle.js';
import type { Monitor } from '../monitor/types.js';
import type { AlertingConfig } from './alerting.js';
import type { Environment } from './environment.js';
import type { RunbookConfig } from './runbooks.js';
import type { StatusPageConfig } from './status-page.js';

/** Where a declaration sits in rampart.yaml, for error messages and report locations. */
export interface ConfigLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export type FirewallKind = 'nftables' | 'iptables';

export interface HostConfig {
  readonly name: string;
  /** IPv4 and IPv6 addresses (no prefix), as written. */
  readonly addresses: readonly string[];
  readonly firewall?: FirewallKind;
  /** Redundancy group (e.g. `web`); services may name a group instead of hosts. */
  readonly group?: string;
  /**
   * What the agent manages on this host (issue 6): nftables tables as `family name` (default `inet filter`), or
   * iptables tables (default `filter`). Everything else on the host is left alone.
   */
  readonly tables?: readonly string[];
  /** production, staging or lab (src/config/environment.ts); unset: the site's, else unmarked (production). */
  readonly environment?: Environment;
  readonly at: ConfigLocation;
}

/** `tcp/443`, `udp/53`, `tcp/8000-8100`. */
export interface PortDecl {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly from: number;
  readonly to: number;
  /** As written, for messages. */
  readonly text: string;
}

export interface ServiceConfig {
  readonly name: string;
  /** Hosts that run it: the names listed under `hosts`, plus every host of `group`. Resolved by the loader. */
  readonly hosts: readonly string[];
  readonly group?: string;
  /** Ports that must be reachable from the internet (any source). */
  readonly public: readonly PortDecl[];
  /** Ports reachable only from `from` (CIDRs); not public. */
  readonly internal?: readonly { readonly ports: readonly PortDecl[]; readonly from: readonly string[] }[];
  /** Health checks run after a change is applied to one of the service's hosts (issue 6). */
  readonly health?: readonly HealthCheck[];
  /** The service's public addresses (the load balancer's): what users connect to. */
  readonly address?: readonly string[];
  /** Where its incoming request rate is measured, and when a fall is a drop (issue 14, §3; docs/monitoring.md). */
  readonly traffic?: TrafficConfig;
  /** A runbook (issue 16 §4): its path as written, relative to the config file; parsed in RampartConfig.runbooks. */
  readonly runbook?: string;
  readonly at: ConfigLocation;
}

/** An access log the agents of the service's hosts read: `combined` (nginx, Apache) or HAProxy's `haproxy` HTTP log. */
export interface TrafficLog {
  readonly path: string;
  readonly format: 'combined' | 'haproxy';
  readonly at: ConfigLocation;
}

/** `traffic:` of a service: its rate sources and the traffic-drop detector's settings. */
export interface TrafficConfig {
  readonly logs: readonly TrafficLog[];
  /** Read the packet counters of the rules that accept the service's public ports (read-only; never adds one). */
  readonly counters: boolean;
  /**
   * Access-log paths whose requests are not customers' (`ignore-paths`), besides the health checks' paths and the
   * service's HTTP monitors' (always left out).
   */
  readonly ignorePaths: readonly string[];
  /** HAProxy's stats socket on `host` (read by that host's agent): per-backend request and 5xx rates. */
  readonly haproxy?: {
    readonly host: string;
    readonly socket: string;
    readonly backend: string;
    readonly at: ConfigLocation;
  };
  /** The detector (src/monitor/traffic-drop.ts): low below `share` of expected for `forMs`, judged above `floor` req/s. */
  readonly drop: { readonly share: number; readonly forMs: number; readonly floor: number; readonly slotMs: number };
  readonly at: ConfigLocation;
}

/** `http`: GET path on port answers with `expect` status; `tcp`: the port accepts a connection. */
export type HealthCheck =
  | {
      readonly kind: 'http';
      readonly port: number;
      readonly path: string;
      readonly expect: number;
      readonly timeoutMs: number;
      readonly at: ConfigLocation;
    }
  | { readonly kind: 'tcp'; readonly port: number; readonly timeoutMs: number; readonly at: ConfigLocation };

/** A time when changes may not be applied (except as emergency changes). */
export type FreezeWindow =
  | {
      readonly kind: 'once';
      readonly name: string;
      /** ISO 8601 instants; end exclusive. */
      readonly start: string;
      readonly end: string;
      readonly at: ConfigLocation;
    }
  | {
      readonly kind: 'weekly';
      readonly name: string;
      /** 0 = Sunday ... 6 = Saturday, in UTC. */
      readonly days: readonly number[];
      /** Minutes after midnight UTC: [from, to), to may be 1440. */
      readonly from: number;
      readonly to: number;
      readonly at: ConfigLocation;
    };

/** The change policy (`policy:` in rampart.yaml, docs/config.md). */
export interface ChangePolicy {
  /** Distinct approvers required (default 1); the author never counts. */
  readonly approvals: number;
  /** Token names allowed to approve; empty = every token with the approver or admin role. */
  readonly approvers: readonly string[];
  readonly freeze: readonly FreezeWindow[];
  /** Hosts first in a group rollout, in this order (the rest follow in config order). */
  readonly canary: readonly string[];
  /** How long an agent waits for the server's confirmation before it restores the snapshot (default 60). */
  readonly confirmTimeoutSeconds: number;
  /** The plan dangers that block a change until an admin overrides it (default: all of BLOCKER_KINDS). */
  readonly blockOn: readonly BlockerKind[];
  /** How long one plan may take before the change is left plan-failed (RAMPART_ERR_PLAN_TIMEOUT; default 60 s). */
  readonly planTimeoutSeconds: number;
  /** The heap one plan may use, in MiB, before the change is left plan-failed (RAMPART_ERR_PLAN_MEMORY). */
  readonly planMemoryMiB: number;
}

export interface AuditRuleSetting {
  readonly enabled: boolean;
  readonly severity?: Severity;
  /** Required when enabled is false: shown in every report. */
  readonly justification?: string;
  readonly at: ConfigLocation;
}

export interface AuditConfig {
  /** Default --fail-on. */
  readonly failOn?: Severity;
  /** Replaces the default admin port list when given. */
  readonly adminPorts?: readonly PortDecl[];
  /** A rule whose `expires=` date is within this many days is `expiring-rule` (default 14). */
  readonly expiringWithinDays?: number;
  /** Sources at least this wide (prefix length at most this) count as broad (default 8). */
  readonly broadSourcePrefix?: number;
  /** The established/related accept should come within the first N rules of the input path (default 10). */
  readonly establishedWithin?: number;
  readonly rules: Readonly<Record<string, AuditRuleSetting>>;
}

export interface RampartConfig {
  readonly file: string;
  readonly site?: string;
  /** The site's environment (`site: {environment: staging}`): its hosts' unless they say otherwise. */
  readonly environment?: Environment;
  readonly hosts: readonly HostConfig[];
  readonly services: readonly ServiceConfig[];
  /** CIDRs from which admin ports may be reached. */
  readonly adminNetworks: readonly string[];
  readonly intents: readonly Intent[];
  readonly audit: AuditConfig;
  /** Always present: the defaults when the file has no `policy:` section. */
  readonly policy: ChangePolicy;
  /** Every monitor: the `monitors:` section and the ones services' `monitor:` stand for (issue 14); always set by the loader. */
  readonly monitors?: readonly Monitor[];
  /** The `alerting:` section (issue 15): routing, inhibition; NO_ALERTING when absent. Always set by the loader. */
  readonly alerting?: AlertingConfig;
  /** `site.timezone` (issue 16): the IANA time zone timelines and postmortems print local times in. */
  readonly timeZone?: string;
  /** The `incidents:` section (issue 16) with the site's time zone; the defaults when absent. Set by the loader. */
  readonly incidents?: IncidentPolicy;
  /** Every runbook the services and alert routes reference, read and parsed at load (absent when none). */
  readonly runbooks?: readonly RunbookConfig[];
  /** The `status-page:` section (issues 16, 17): what the public status page shows; absent: no public page. */
  readonly statusPage?: StatusPageConfig;
}
