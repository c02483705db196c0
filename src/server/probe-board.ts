/**
 * Probes the server asks a peer's agent to run: "can web2 reach web1's shop through web1's firewall?" The server
 * is one vantage point; a peer inside the site is another (a ruleset that only lets the server's address in would
 * pass the server's probe and still lock out the load balancer's network). Requests live in memory: they last a
 * few seconds, and an agent whose confirmation was lost to a restart simply asks again.
 */
import { randomBytes } from 'node:crypto';
import type { HealthResult, ProbeRequest } from '../agent/protocol.js';

interface Pending extends ProbeRequest {
  readonly peer: string;
  taken: boolean;
  readonly done: (results: HealthResult[] | undefined) => void;
}

export class ProbeBoard {
  private readonly pending = new Map<string, Pending>();
  private readonly health = new Map<string, { at: number; healthy: Promise<boolean> }>();

  /**
   * Whether `host` passed the server's own probe, from a verdict at most `maxAgeMs` old. Agents poll every second
   * while they wait for the other backends to be healthy: one probe per host serves all of them (concurrent
   * callers share the probe in flight) instead of one per poll.
   */
  healthOf(host: string, maxAgeMs: number, now: number, run: () => Promise<boolean>): Promise<boolean> {
    const known = this.health.get(host);
    if (known && now - known.at <= maxAgeMs) return known.healthy;
    const healthy = run().catch(() => false);
    this.health.set(host, { at: now, healthy });
    return healthy;
  }

  /** Asks `peer` to probe; resolves with its results, or undefined when it did not answer within `timeoutMs`. */
  ask(peer: string, req: Omit<ProbeRequest, 'id'>, timeoutMs: number): Promise<HealthResult[] | undefined> {
    const id = randomBytes(6).toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, {
        ...req,
        id,
        peer,
        taken: false,
        done: (r) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(r);
        },
      });
    });
  }

  /** The probes waiting for `peer` (handed out once). */
  take(peer: string): ProbeRequest[] {
    const out: ProbeRequest[] = [];
    for (const p of this.pending.values()) {
      if (p.peer !== peer || p.taken) continue;
      p.taken = true;
      out.push({ id: p.id, target: p.target, address: p.address, checks: p.checks });
    }
    return out;
  }

  /** A peer's answer; false when the probe is unknown (timed out) or was asked of another peer. */
  answer(peer: string, id: string, results: HealthResult[]): boolean {
    const p = this.pending.get(id);
    if (!p || p.peer !== peer) return false;
    p.done(results);
    return true;
  }
}
