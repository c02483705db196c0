/**
 * The contract of `rampart.yaml`: what the site declares (hosts, services, admin networks, intents) and how the
 * audit is tuned. Parsed and validated by src/config/load.ts (zod schema, errors with file:line:column); used by
 * `rampart audit` now and by the server (issue 5: change policy, health checks, backends) later, which extends
 * these types with optional fields only.
 */

import type { Severity } from '../analysis/audit/types.js';
import type { Intent } from '../analysis/intents.js';

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
  readonly at: ConfigLocation;
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
  readonly hosts: readonly HostConfig[];
  readonly services: readonly ServiceConfig[];
  /** CIDRs from which admin ports may be reached. */
  readonly adminNetworks: readonly string[];
  readonly intents: readonly Intent[];
  readonly audit: AuditConfig;
}
