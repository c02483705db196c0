import { describe, expect, it } from 'vitest';
import { isLoopback, parseAuthLimit } from '../cli/commands/serve.js';
import { AuthGuard, LastUsed } from './auth-guard.js';

describe('AuthGuard (simulated time)', () => {
  it('lets N failures through, then gives the time to wait, and reports the burst once', () => {
    const g = new AuthGuard({ failures: 3, windowMs: 60_000 });
    const t0 = 1_000_000;
    expect(g.fail('10.0.0.1', undefined, t0)).toEqual([]);
    expect(g.fail('10.0.0.1', undefined, t0 + 1)).toEqual([]);
    expect(g.retryAfter('10.0.0.1', undefined, t0 + 2)).toBeUndefined();
    expect(g.fail('10.0.0.1', undefined, t0 + 2).map((b) => b.key)).toEqual(['address:10.0.0.1']);
    expect(g.retryAfter('10.0.0.1', undefined, t0 + 10_000)).toBe(50);
    expect(g.fail('10.0.0.1', undefined, t0 + 10_001)).toEqual([]); // reported once per burst
    expect(g.retryAfter('10.0.0.2', undefined, t0 + 10_000)).toBeUndefined(); // another address is not affected
    expect(g.retryAfter('10.0.0.1', undefined, t0 + 60_000)).toBeUndefined(); // the window ended
  });

  it('counts a token id across addresses', () => {
    const g = new AuthGuard({ failures: 2, windowMs: 1000 });
    g.fail('10.0.0.1', 'deadbeef', 0);
    const bursts = g.fail('10.0.0.2', 'deadbeef', 1);
    expect(bursts.map((b) => b.key)).toEqual(['token:deadbeef']);
    expect(g.retryAfter('10.0.0.3', 'deadbeef', 2)).toBe(1);
    expect(g.retryAfter('10.0.0.3', 'cafebabe', 2)).toBeUndefined();
  });

  it('notes a last use at most once a minute per token', () => {
    const l = new LastUsed();
    expect(l.due('a', 0)).toBe(true);
    expect(l.due('a', 59_999)).toBe(false);
    expect(l.due('b', 1)).toBe(true);
    expect(l.due('a', 60_000)).toBe(true);
  });
});

describe('serve options', () => {
  it('reads --auth-limit as FAILURES/WINDOW and refuses anything else, saying what is valid', () => {
    expect(parseAuthLimit('10/60s')).toEqual({ failures: 10, windowMs: 60_000 });
    expect(parseAuthLimit('30/5m')).toEqual({ failures: 30, windowMs: 300_000 });
    for (const bad of ['10', '0/60s', '10/0s', 'ten/60s', '10/60']) {
      expect(() => parseAuthLimit(bad)).toThrow(/--auth-limit: .* expected e\.g\. 10\/60s/);
    }
  });

  it('knows which listen addresses only this machine can reach', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.0.2.10', 'rampart.internal']) expect(isLoopback(h)).toBe(false);
  });
});
