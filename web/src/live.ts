/**
 * Live updates: one EventSource on /api/v1/stream (the session cookie goes with it). Each event names a part of the
 * state (monitors, alerts, changes, ...); pages that show that part read it again. `session-ended` signs the page
 * out. The browser reconnects by itself; after a reconnect every part is read again (events may have been missed).
 */
import { useEffect, useState } from 'preact/hooks';

export type Topic = 'monitors' | 'traffic' | 'alerts' | 'silences' | 'changes' | 'hosts' | 'audit' | 'incidents';
const TOPICS: readonly Topic[] = [
  'monitors',
  'traffic',
  'alerts',
  'silences',
  'changes',
  'hosts',
  'audit',
  'incidents',
];

const versions = new Map<Topic, number>(TOPICS.map((t) => [t, 0]));
const listeners = new Set<() => void>();
let status: 'connecting' | 'live' | 'offline' = 'connecting';

function bump(topics: readonly Topic[]): void {
  for (const t of topics) versions.set(t, (versions.get(t) ?? 0) + 1);
  for (const l of listeners) l();
}

let source: EventSource | undefined;

export function connect(onSessionEnded: (why: string) => void): () => void {
  source?.close();
  const es = new EventSource('/api/v1/stream');
  source = es;
  let opened = false;
  es.onopen = () => {
    status = 'live';
    // A reconnect may have missed events: everything is read again.
    if (opened) bump(TOPICS);
    opened = true;
    bump([]);
  };
  es.onerror = () => {
    status = es.readyState === EventSource.CLOSED ? 'offline' : 'connecting';
    bump([]);
  };
  for (const t of TOPICS) es.addEventListener(t, () => bump([t]));
  es.addEventListener('session-ended', (e) => {
    es.close();
    let why = 'the session ended';
    try {
      why = JSON.parse((e as MessageEvent).data).reason ?? why;
    } catch {
      // keep the default
    }
    onSessionEnded(why);
  });
  return () => es.close();
}

/** A number that changes whenever one of `topics` changed on the server (use it as an effect dependency). */
export function useLive(topics: readonly Topic[]): number {
  const sum = () => topics.reduce((n, t) => n + (versions.get(t) ?? 0), 0);
  const [v, setV] = useState(sum());
  useEffect(() => {
    const l = () => setV(sum());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, [topics.join()]);
  return v;
}

export function useLiveStatus(): string {
  const [s, setS] = useState(status);
  useEffect(() => {
    const l = () => setS(status);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return s;
}
