import { describe, expect, it } from 'vitest';
import { tlsExpiryLevel } from './tls-expiry.js';

const now = Date.parse('2026-12-04T12:00:00.000Z');
const day = 86_400_000;

describe('a certificate near its end', () => {
  it('is fine with 14 days left or more, a warning under 14, critical under 3 (and after its end)', () => {
    expect(tlsExpiryLevel(now + 14 * day, now)).toEqual({ level: 'ok', daysLeft: 14 });
    expect(tlsExpiryLevel(now + 14 * day - 1, now)).toEqual({ level: 'warning', daysLeft: 13 });
    expect(tlsExpiryLevel(now + 3 * day, now)).toEqual({ level: 'warning', daysLeft: 3 });
    expect(tlsExpiryLevel(now + 3 * day - 1, now)).toEqual({ level: 'critical', daysLeft: 2 });
    expect(tlsExpiryLevel(now - day, now)).toEqual({ level: 'critical', daysLeft: -1 });
  });

  it('takes other thresholds', () => {
    expect(tlsExpiryLevel(now + 20 * day, now, { warningDays: 30, criticalDays: 7 }).level).toBe('warning');
    expect(tlsExpiryLevel(now + 6 * day, now, { warningDays: 30, criticalDays: 7 }).level).toBe('critical');
  });
});
