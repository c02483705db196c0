/**
 * How close a certificate is to its end (issue 15 §1, `TlsCertificateExpiring`), pure: a TLS monitor's newest
 * result says the certificate's notAfter; this says whether that is a warning (fewer than 14 days left), critical
 * (fewer than 3) or fine, at `nowMs`. The monitoring loop (src/server/monitoring.ts) turns changes into events.
 */

export type TlsExpiryLevel = 'ok' | 'warning' | 'critical';

export interface TlsExpiryThresholds {
  readonly warningDays: number;
  readonly criticalDays: number;
}

export const DEFAULT_TLS_EXPIRY: TlsExpiryThresholds = { warningDays: 14, criticalDays: 3 };

const DAY_MS = 86_400_000;

export function tlsExpiryLevel(
  notAfterMs: number,
  nowMs: number,
  t: TlsExpiryThresholds = DEFAULT_TLS_EXPIRY,
): { readonly level: TlsExpiryLevel; readonly daysLeft: number } {
  const left = notAfterMs - nowMs;
  const daysLeft = Math.floor(left / DAY_MS);
  const level = left < t.criticalDays * DAY_MS ? 'critical' : left < t.warningDays * DAY_MS ? 'warning' : 'ok';
  return { level, daysLeft };
}
