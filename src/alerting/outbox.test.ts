import { describe, expect, it } from 'vitest';
import { decide, nextAttempt, notificationFailedAlert } from './outbox.js';

const P = { baseMs: 1000, capMs: 60_000 };

describe('outbox retry arithmetic', () => {
  it('waits a random share of an exponentially growing ceiling (full jitter), capped', () => {
    const top = () => 0.999_999;
    expect(nextAttempt(1, 0, 0, 3_600_000, top, P)).toBe(999);
    expect(nextAttempt(2, 0, 0, 3_600_000, top, P)).toBe(1999);
    expect(nextAttempt(4, 0, 0, 3_600_000, top, P)).toBe(7999);
    expect(nextAttempt(30, 0, 0, 3_600_000, top, P)).toBe(59_999);
    // the low end is "at once" (1 ms), never in the past
    expect(nextAttempt(3, 5000, 0, 3_600_000, () => 0, P)).toBe(5001);
  });

  it("takes a receiver's Retry-After as a floor, still capped", () => {
    expect(nextAttempt(1, 0, 0, 3_600_000, () => 0.5, P, 7000)).toBe(7000);
    expect(nextAttempt(1, 0, 0, 3_600_000, () => 0.5, P, 600_000)).toBe(60_000);
  });

  it('gives up when the next try would fall past the deadline', () => {
    expect(nextAttempt(1, 59_500, 0, 60_000, () => 0.9, P)).toBeNull();
    expect(nextAttempt(1, 59_000, 0, 60_000, () => 0.5, P)).toBe(59_500);
  });

  it('decides: sent, retried, given up (permanent or deadline)', () => {
    const r = () => 0.5;
    expect(decide({ outcome: 'ok' }, 1, 0, 0, 60_000, r, P)).toEqual({ kind: 'complete' });
    expect(decide({ outcome: 'retryable', error: 'HTTP 503' }, 1, 0, 0, 60_000, r, P)).toEqual({
      kind: 'retry',
      at: 500,
      error: 'HTTP 503',
    });
    expect(decide({ outcome: 'permanent', error: 'HTTP 400' }, 1, 0, 0, 60_000, r, P)).toEqual({
      kind: 'give-up',
      error: 'HTTP 400',
      reason: 'permanent',
    });
    expect(decide({ outcome: 'retryable', error: 'timeout' }, 9, 59_999, 0, 60_000, r, P)).toMatchObject({
      kind: 'give-up',
      reason: 'deadline',
    });
  });

  it("labels a receiver's failure as one alert per receiver and channel", () => {
    const a = notificationFailedAlert({
      key: 'k',
      receiver: 'ops',
      channel: 'webhook/0',
      groupKey: 'g',
      attempts: 12,
      error: 'POST http://hooks.example.com/x: HTTP 503',
      reason: 'deadline',
      createdAt: '2026-12-03T10:00:00.000Z',
      at: '2026-12-03T11:00:00.000Z',
    });
    expect(a.labels).toEqual({
      alertname: 'NotificationFailed',
      severity: 'critical',
      receiver: 'ops',
      channel: 'webhook/0',
    });
    expect(a.annotations.summary).toBe('notifications to ops (webhook/0) fail: given up after 12 attempts');
  });
});
