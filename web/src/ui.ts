/**
 * What every page uses: reading a path (again when the server says it changed), showing loading and errors where
 * they happen, a button that runs an API action, a state badge, a time.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Json } from './api.js';
import { type Topic, useLive } from './live.js';

export interface Data<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  /** The last read was answered 404 (the thing, or on an older server the route, does not exist). */
  readonly notFound: boolean;
  readonly reload: () => void;
}

/** Reads `path` now, again when one of `topics` changes on the server, and when `reload` is called. */
export function useData<T = Json>(path: string | null, topics: readonly Topic[]): Data<T> {
  const live = useLive(topics);
  const [n, setN] = useState(0);
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; notFound: boolean }>({
    data: undefined,
    error: undefined,
    notFound: false,
  });
  useEffect(() => {
    if (path === null) return;
    let current = true;
    api('GET', path).then(
      (data) => current && setState({ data: data as T, error: undefined, notFound: false }),
      (e: Error) =>
        current &&
        setState((s) => ({ data: s.data, error: e.message, notFound: e instanceof ApiError && e.status === 404 })),
    );
    return () => {
      current = false;
    };
  }, [path, live, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

export function State({ s }: { s: string }) {
  return html`<span class=${`state state-${String(s).toLowerCase()}`}>${s}</span>`;
}

export function Problem({ text }: { text: string | undefined }) {
  return text ? html`<p class="problem" role="alert">${text}</p>` : null;
}

export function Loading<T>({ d, children }: { d: Data<T>; children: (data: T) => unknown }) {
  if (d.data === undefined)
    return d.error ? html`<${Problem} text=${d.error} />` : html`<p aria-busy="true">Loading…</p>`;
  return html`${d.error ? html`<${Problem} text=${d.error} />` : null}${children(d.data)}`;
}

/** A button that runs an API action, shows its refusal or error where it was pressed, and disables itself meanwhile. */
export function Action({ label, run, kind }: { label: string; run: () => Promise<unknown>; kind?: string }) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | undefined>();
  return html`<span class="action">
    <button type="button" class=${kind ?? ''} disabled=${busy}
      onClick=${async () => {
        setBusy(true);
        setErr(undefined);
        try {
          await run();
        } catch (e) {
          setErr((e as Error).message);
        } finally {
          setBusy(false);
        }
      }}>${label}</button>
    <${Problem} text=${err} />
  </span>`;
}
