/**
 * Failed authentications, counted and slowed down: after `failures` failed attempts from one address, or naming one
 * token id, within `windowMs`, further attempts from that address (or for that token) are refused with 429 until
 * the window ends, valid token or not. Each burst is reported once (the server writes it to the audit log), not
 * once per attempt. Pure: the clock is an argument; the map is bounded so a scan from many addresses cannot grow it
 * without limit.
 */

export interface AuthLimits {
  /** Failed attempts allowed per key and window before refusing (default 10). */
  readonly failures: number;
  /** The window, in milliseconds (default 60 s). */
  readonly windowMs: number;
}

export const DEFAULT_AUTH_LIMITS: AuthLimits = { failures: 10, windowMs: 60_000 };

/** Keys kept at most; the oldest windows are forgotten first. */
const MAX_KEYS = 10_000;

interface Window {
  start: number;
  count: number;
  reported: boolean;
}

/** A burst that just crossed the limit: report it once. */
export interface Burst {
  readonly key: string;
  readonly count: number;
  readonly since: string;
  readonly until: string;
}

export class AuthGuard {
  private readonly windows = new Map<string, Window>();

  constructor(readonly limits: AuthLimits = DEFAULT_AUTH_LIMITS) {}

  private keys(address: string, tokenId: string | undefined): string[] {
    return tokenId ? [`address:${address}`, `token:${tokenId}`] : [`address:${address}`];
  }

  private current(key: string, now: number): Window | undefined {
    const w = this.windows.get(key);
    if (w && now - w.start >= this.limits.windowMs) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  /** Seconds to wait when the address or the token id is over the limit now; undefined when it may try. */
  retryAfter(address: string, tokenId: string | undefined, now: number): number | undefined {
    let wait: number | undefined;
    for (const key of this.keys(address, tokenId)) {
      const w = this.current(key, now);
      if (w && w.count >= this.limits.failures) {
        const s = Math.max(1, Math.ceil((w.start + this.limits.windowMs - now) / 1000));
        wait = Math.max(wait ?? 0, s);
      }
    }
    return wait;
  }

  /** Counts a failed attempt; returns the bursts that reached the limit with it (each reported once). */
  fail(address: string, tokenId: string | undefined, now: number): Burst[] {
    const out: Burst[] = [];
    for (const key of this.keys(address, tokenId)) {
      let w = this.current(key, now);
      if (!w) {
        if (this.windows.size >= MAX_KEYS) {
          const oldest = this.windows.keys().next().value;
          if (oldest !== undefined) this.windows.delete(oldest);
        }
        w = { start: now, count: 0, reported: false };
        this.windows.set(key, w);
      }
      w.count++;
      if (w.count >= this.limits.failures && !w.reported) {
        w.reported = true;
        out.push({
          key,
          count: w.count,
          since: new Date(w.start).toISOString(),
          until: new Date(w.start + this.limits.windowMs).toISOString(),
        });
      }
    }
    return out;
  }
}

/** Notes tokens' last use at most once a minute per token (the store also refuses more often). */
export class LastUsed {
  private readonly noted = new Map<string, number>();
  constructor(private readonly everyMs = 60_000) {}

  /** True when `id`'s use at `now` should be written. */
  due(id: string, now: number): boolean {
    const last = this.noted.get(id);
    if (last !== undefined && now - last < this.everyMs) return false;
    if (this.noted.size >= MAX_KEYS) this.noted.clear();
    this.noted.set(id, now);
    return true;
  }
}
