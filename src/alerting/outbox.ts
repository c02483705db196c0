/**
 * The outbox's retry arithmetic (issue 15, §4), pure: exponential backoff with full jitter (AWS's "Exponential
 * Backoff And Jitter": sleep = random(0, min(cap, base * 2^attempt))), given up at the receiver's deadline. The
 * random source and the clock are the caller's.
 */

export interface BackoffPolicy {
  /** The first retry waits up to this long (ms). */
  readonly baseMs: number;
  /** No wait is longer than this (ms). */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000 };

/**
 * When to try again after failed attempt number `attempt` (1 for the first failure), or null to give up: when the
 * next try would fall after `createdMs + deadlineMs`. `retryAfterMs` (a receiver's Retry-After) is a floor.
 * `random` returns [0, 1).
 */
export function nextAttempt(
  attempt: number,
  nowMs: number,
  createdMs: number,
  deadlineMs: number,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  retryAfterMs?: number,
): number | null {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  let wait = Math.floor(random() * ceiling);
  if (retryAfterMs !== undefined && retryAfterMs > wait) wait = Math.min(retryAfterMs, policy.capMs);
  const at = nowMs + Math.max(1, wait);
  return at > createdMs + deadlineMs ? null : at;
}

/** What one attempt's result means for its row. */
export type OutboxDecision =
  | { readonly kind: 'complete' }
  | { readonly kind: 'retry'; readonly at: number; readonly error: string }
  | { readonly kind: 'give-up'; readonly error: string; readonly reason: 'permanent' | 'deadline' };

/**
 * The row's next step after attempt number `attempt` (1 for the first) came back `result`: done, retried at a
 * time with backoff, or given up (a permanent failure, or the next try would fall past the deadline).
 */
export function decide(
  result:
    | { readonly outcome: 'ok' }
    | { readonly outcome: 'retryable'; readonly error: string; readonly retryAfterMs?: number | undefined }
    | { readonly outcome: 'permanent'; readonly error: string },
  attempt: number,
  nowMs: number,
  createdMs: number,
  deadlineMs: number,
  random: () => number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): OutboxDecision {
  if (result.outcome === 'ok') return { kind: 'complete' };
  if (result.outcome === 'permanent') return { kind: 'give-up', error: result.error, reason: 'permanent' };
  const at = nextAttempt(attempt, nowMs, createdMs, deadlineMs, random, policy, result.retryAfterMs);
  return at === null
    ? { kind: 'give-up', error: result.error, reason: 'deadline' }
    : { kind: 'retry', at, error: result.error };
}

/**
 * A notification given up on one channel: the value the alerting service turns into an alert sent on the other
 * receivers (`notificationFailedAlert` gives its labels and annotations).
 */
export interface DeliveryFailure {
  readonly key: string;
  /** The receiver's name, or `@user`. */
  readonly receiver: string;
  readonly channel: string;
  readonly groupKey: string;
  readonly attempts: number;
  readonly error: string;
  readonly reason: 'permanent' | 'deadline';
  /** ISO: when the notification was written, and when it was given up. */
  readonly createdAt: string;
  readonly at: string;
}

/**
 * Labels and annotations of the alert a delivery failure raises. One alert per receiver and channel (the
 * fingerprint does not change with each failed notification), so a receiver that is down pages once, on the
 * other receivers (the route for it should exclude `receiver` itself: `alertname="NotificationFailed"` routed
 * elsewhere).
 */
export function notificationFailedAlert(f: DeliveryFailure): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  return {
    labels: { alertname: 'NotificationFailed', severity: 'critical', receiver: f.receiver, channel: f.channel },
    annotations: {
      summary: `notifications to ${f.receiver} (${f.channel}) fail: ${f.reason === 'deadline' ? `given up after ${f.attempts} attempts` : 'refused'}`,
      description: f.error,
    },
  };
}
