/**
 * Monitors and probe results (issue 14): what is checked, from where, and what a check found. Plain data: the
 * config loader builds monitors (src/config/monitors.ts), the probers at the edge produce results
 * (src/monitor/probers.ts), the pure state machines (src/monitor/state.ts) turn results into states and events.
 */

/** What a monitor checks. Durations are milliseconds. */
export type Check =
  | {
      readonly kind: 'http';
      /** http:// or https:// URL; a direct target has the host's address in it. */
      readonly url: string;
      readonly method: string;
      readonly headers: Readonly<Record<string, string>>;
      /** Statuses that count as up. */
      readonly expect: readonly number[];
      /** A substring the body must contain. */
      readonly body?: string;
      /** Slower than this counts as a failure. */
      readonly maxLatencyMs?: number;
      readonly tlsVerify: boolean;
      readonly followRedirects: boolean;
    }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | {
      readonly kind: 'tls';
      readonly host: string;
      readonly port: number;
      /** SNI and the name the certificate must be valid for (default: host). */
      readonly servername?: string;
      /** Fewer days than this before expiry counts as a failure. */
      readonly minDays: number;
    }
  | {
      readonly kind: 'dns';
      readonly name: string;
      readonly type: 'A' | 'AAAA' | 'CNAME' | 'MX' | 'TXT' | 'NS';
      /** Answers that must all be present (empty: any answer). */
      readonly expect: readonly string[];
      /** A resolver address (default: the system's). */
      readonly resolver?: string;
    };

/** Who probes: the server, every agent, probes (`rampart probe`). */
export type VantageKind = 'server' | 'agents' | 'probes';

export interface Monitor {
  /** Unique: `shop-public`, or `shop@web1` for a service's direct check of one backend. */
  readonly name: string;
  readonly check: Check;
  /** The service it watches (diagnosis, redundancy, traffic). */
  readonly service?: string;
  /** For a direct check of one backend: that host (its agent probes it on loopback: the inside view). */
  readonly host?: string;
  /** `public`: through the service's public address (the load balancer); `direct`: one backend; `url`: any. */
  readonly target: 'public' | 'direct' | 'url';
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive failures for a vantage point to call it down (and successes to call it up again). */
  readonly failures: number;
  /** Vantage points that must see it down for the monitor to be DOWN: a number, or a majority of those reporting. */
  readonly quorum: number | 'majority';
  readonly from: readonly VantageKind[];
}

/** Where a probe ran: `server`, `agent:web1`, `probe:eu-west`. */
export type Vantage = string;

export interface Timings {
  readonly dnsMs?: number;
  readonly connectMs?: number;
  readonly tlsMs?: number;
  readonly firstByteMs?: number;
  readonly totalMs: number;
}

export interface ProbeResult {
  readonly monitor: string;
  readonly vantage: Vantage;
  /** When the probe started (epoch ms). */
  readonly at: number;
  readonly ok: boolean;
  readonly timings: Timings;
  /** Why it failed, in words (`connect ECONNREFUSED`, `status 503, expected 200`, `timeout after 5000 ms`). */
  readonly error?: string;
  /** HTTP status, days to certificate expiry, DNS answers: what was seen. */
  readonly detail?: Readonly<Record<string, unknown>>;
  /** The probe ran inside the host (its agent on loopback). */
  readonly inside?: boolean;
}

export type MonitorState = 'UP' | 'DEGRADED' | 'DOWN' | 'UNKNOWN';

/** What a vantage point other than the server (an agent, a probe) is asked to probe. */
export interface Assignment {
  readonly monitor: string;
  readonly check: Check;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly failures: number;
  /** Probe the host's own service on loopback (the inside view): the address used instead of the target's. */
  readonly address?: string;
  readonly inside?: boolean;
}
