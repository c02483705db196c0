/**
 * The outbox worker (issue 15, §4): claims due outbox rows with a lease, resolves each row's channel in the current
 * config, sends, and records the result (sent; retried with backoff; given up at a permanent failure or the
 * receiver's deadline, reported through `onGiveUp`). Several replicas run one each against the same database: the
 * lease gives every row to one worker at a time, and a worker killed mid-send leaves its rows to the others when
 * the lease runs out (at-least-once: only a row whose send had reached the receiver when the worker died can be
 * sent twice; at most `concurrency` rows per killed worker).
 *
 * Rows are sent `concurrency` at a time, claimed only as many as are sent at once, so a lease never has to outlive
 * more than one send (each bounded by its channel's timeout, far below the lease).
 */
import { hostname } from 'node:os';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type NotifyConfig, resolveChannel, sendNotification } from '../alerting/notifiers/index.js';
import { permanent, type SendResult } from '../alerting/notifiers/result.js';
import {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  type DeliveryFailure,
  decide,
  type OutboxDecision,
} from '../alerting/outbox.js';
import { DEFAULT_RECEIVER_DEADLINE_MS } from '../config/alerting-receivers.js';
import type { OutboxItem, OutboxStore } from '../store/outbox-store.js';

/** The event kind of a notification given up (subject `receiver:NAME` or `receiver:@user`, data a DeliveryFailure). */
export const NOTIFICATION_FAILED = 'notification.failed';

export interface OutboxMetrics {
  readonly sent: Counter<'receiver' | 'channel'>;
  readonly failed: Counter<'receiver' | 'channel' | 'result'>;
}

/**
 * Registers the outbox's series on `registry`: depth and oldest pending age per receiver (read from the store at
 * each scrape, so every replica reports the shared queue), and this replica's sent and failed counters.
 */
export function registerOutboxMetrics(registry: Registry, outbox: OutboxStore, now: () => number): OutboxMetrics {
  const stats = () => outbox.stats(now());
  new Gauge({
    name: 'rampart_outbox_pending',
    help: 'Notifications waiting in the outbox, per receiver (a user target is @name)',
    labelNames: ['receiver'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await stats()) this.set({ receiver: s.receiver }, s.pending);
    },
  });
  new Gauge({
    name: 'rampart_outbox_oldest_pending_seconds',
    help: 'Age of the oldest notification waiting in the outbox, per receiver',
    labelNames: ['receiver'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await stats()) this.set({ receiver: s.receiver }, s.oldestPendingMs / 1000);
    },
  });
  return {
    sent: new Counter({
      name: 'rampart_notifications_sent_total',
      help: 'Notifications delivered by this replica, per receiver and channel',
      labelNames: ['receiver', 'channel'],
      registers: [registry],
    }),
    failed: new Counter({
      name: 'rampart_notifications_failed_total',
      help: 'Failed notification attempts by this replica, per receiver, channel and result (retry, gave-up)',
      labelNames: ['receiver', 'channel', 'result'],
      registers: [registry],
    }),
  };
}

export interface OutboxWorkerOptions {
  readonly outbox: OutboxStore;
  /** This replica's name in leases (default: host name and pid). */
  readonly holder?: string | undefined;
  /** The current receivers and users (read at each send, so a reload takes effect at once). */
  readonly config: () => NotifyConfig;
  readonly now?: (() => number) | undefined;
  readonly random?: (() => number) | undefined;
  /** How long a claimed row is this worker's (default 5 min; well above the longest send timeout). */
  readonly leaseMs?: number | undefined;
  /** Rows sent at once (default 4). */
  readonly concurrency?: number | undefined;
  /** How often the queue is looked at when nothing kicks the worker (default 500 ms). */
  readonly pollMs?: number | undefined;
  readonly backoff?: BackoffPolicy | undefined;
  readonly metrics?: OutboxMetrics | undefined;
  /** A notification given up on a channel: the caller raises the receiver's failure on the other receivers. */
  readonly onGiveUp?: ((f: DeliveryFailure) => void | Promise<void>) | undefined;
  /** Problems of the worker itself (the store unreachable), and each give-up; never a secret. */
  readonly log?: ((level: 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void) | undefined;
  /** How long sent and given-up rows are kept (default 7 days); pruned at most once an hour. */
  readonly keepMs?: number | undefined;
  /** Replaces the real send (the lab's timing probe); the default sends with the notifiers. */
  readonly send?: ((item: OutboxItem, cfg: NotifyConfig, nowMs: number) => Promise<SendResult>) | undefined;
}

export interface OutboxWorker {
  /** Looks at the queue now (after an enqueue), instead of at the next poll. */
  kick(): void;
  /** Claims and sends until nothing is due; returns how many rows were attempted (tests, `rampart` one-shots). */
  drain(): Promise<number>;
  /** Stops claiming, waits for the sends in flight to be recorded. */
  stop(): Promise<void>;
}

/** Sends one item with the notifiers, a channel that no longer exists being a permanent failure. */
export async function sendItem(item: OutboxItem, cfg: NotifyConfig, nowMs: number): Promise<SendResult> {
  const d = resolveChannel(cfg, item.target, item.channel);
  if (typeof d === 'string') return permanent(d);
  return sendNotification(d, item.notification, item.key, nowMs, cfg.templates);
}

function deadlineOf(cfg: NotifyConfig, item: OutboxItem): number {
  if (item.target.kind !== 'receiver') return DEFAULT_RECEIVER_DEADLINE_MS;
  const name = item.target.receiver;
  return cfg.receivers.find((r) => r.name === name)?.deadlineMs ?? DEFAULT_RECEIVER_DEADLINE_MS;
}

export function startOutboxWorker(o: OutboxWorkerOptions): OutboxWorker {
  const holder = o.holder ?? `${hostname()}:${process.pid}`;
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  const leaseMs = o.leaseMs ?? 300_000;
  const concurrency = Math.max(1, o.concurrency ?? 4);
  const pollMs = o.pollMs ?? 500;
  const backoff = o.backoff ?? DEFAULT_BACKOFF;
  const send = o.send ?? sendItem;
  const log = o.log ?? (() => {});
  const keepMs = o.keepMs ?? 7 * 86_400_000;
  let prunedAt = Number.NEGATIVE_INFINITY;

  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  /** Sends one item and records a failure; a success is returned for the round to record with the others. */
  async function attempt(item: OutboxItem): Promise<boolean> {
    const cfg = o.config();
    let result: SendResult;
    try {
      result = await send(item, cfg, now());
    } catch (e) {
      result = { outcome: 'retryable', error: e instanceof Error ? e.message : String(e) };
    }
    const at = now();
    const d: OutboxDecision = decide(
      result,
      item.attempts + 1,
      at,
      item.createdMs,
      deadlineOf(cfg, item),
      random,
      backoff,
    );
    const labels = { receiver: item.receiver, channel: item.channel };
    if (d.kind === 'complete') {
      o.metrics?.sent.inc(labels);
      return true;
    }
    if (d.kind === 'retry') {
      await o.outbox.fail(item.id, holder, d.error, d.at, at);
      o.metrics?.failed.inc({ ...labels, result: 'retry' });
      return false;
    }
    const failure: DeliveryFailure = {
      key: item.key,
      receiver: item.receiver,
      channel: item.channel,
      groupKey: item.notification.groupKey,
      attempts: item.attempts + 1,
      error: d.error,
      reason: d.reason,
      createdAt: item.createdAt,
      at: new Date(at).toISOString(),
    };
    // The give-up and its event in one transaction: the alerting service reads notification.failed like any event.
    const mine = await o.outbox.fail(item.id, holder, d.error, null, at, {
      at: failure.at,
      kind: NOTIFICATION_FAILED,
      subject: `receiver:${item.receiver}`,
      data: failure,
    });
    o.metrics?.failed.inc({ ...labels, result: 'gave-up' });
    if (!mine) return false;
    log('error', `notification to ${item.receiver} (${item.channel}) given up: ${d.error}`, {
      key: item.key,
      reason: d.reason,
    });
    try {
      await o.onGiveUp?.(failure);
    } catch (e) {
      log('error', 'reporting a given-up notification failed', { error: e instanceof Error ? e.message : String(e) });
    }
    return false;
  }

  /**
   * One claim of up to `concurrency` rows, sent together, the delivered ones recorded in one transaction (one
   * commit, one fsync on SQLite, for the round); the number attempted.
   */
  async function round(): Promise<number> {
    const items = await o.outbox.claim(holder, now(), leaseMs, concurrency);
    if (items.length === 0) return 0;
    const sent = await Promise.all(items.map((i) => attempt(i)));
    const done = items.filter((_, k) => sent[k]);
    if (done.length > 0) {
      const mine = new Set(
        await o.outbox.completeMany(
          done.map((i) => i.id),
          holder,
          now(),
        ),
      );
      for (const i of done)
        if (!mine.has(i.id))
          log('warn', 'outbox lease lost before the send was recorded', {
            key: i.key,
            receiver: i.receiver,
            channel: i.channel,
          });
    }
    return items.length;
  }

  async function drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await round();
      total += n;
      if (n === 0 || stopped) return total;
    }
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        await drain();
        if (now() - prunedAt >= 3_600_000) {
          prunedAt = now();
          await o.outbox.prune(new Date(prunedAt - keepMs).toISOString());
        }
      } catch (e) {
        log('error', 'outbox worker round failed', { error: e instanceof Error ? e.message : String(e) });
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollMs);
      });
      wake = undefined;
    }
  })();

  return {
    kick() {
      if (timer) clearTimeout(timer);
      wake?.();
    },
    drain,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}
