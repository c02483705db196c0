/**
 * Alerts (issue 15 §1): the fingerprint of a label set as Alertmanager computes it (FNV-1a 64 over the label names
 * and values sorted by name, each followed by the 0xff separator byte), so a Prometheus user's fingerprints and
 * Rampart's agree, and label sets checked the way Prometheus checks them.
 */
import type { Alert, Labels } from './types.js';

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const SEPARATOR = 0xff;

/** 16 hex digits: FNV-1a 64 of `name 0xff value 0xff` for each label, names sorted (Alertmanager's Fingerprint). */
export function fingerprint(labels: Labels): string {
  let h = FNV_OFFSET;
  const add = (bytes: Uint8Array) => {
    for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK;
  };
  const enc = new TextEncoder();
  const sep = new Uint8Array([SEPARATOR]);
  for (const name of Object.keys(labels).sort()) {
    add(enc.encode(name));
    add(sep);
    add(enc.encode(labels[name] ?? ''));
    add(sep);
  }
  return h.toString(16).padStart(16, '0');
}

/** Prometheus's rule for label names. */
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The problem with a label set in words, or undefined: names as Prometheus allows them, `alertname` present. */
export function labelProblem(labels: Labels): string | undefined {
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME_RE.test(name)) return `label name '${name}' is not [a-zA-Z_][a-zA-Z0-9_]*`;
    if (typeof value !== 'string') return `label '${name}' is not text`;
  }
  if (!labels.alertname) return "the label 'alertname' is missing";
  return undefined;
}

/** Drops empty label values (Prometheus treats `x=""` as no label `x`), so fingerprints do not depend on them. */
export function cleanLabels(labels: Record<string, string | undefined>): Labels {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) {
    const v = labels[k];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

export interface AlertInput {
  readonly labels: Record<string, string | undefined>;
  readonly annotations?: Record<string, string | undefined>;
  readonly source: string;
  readonly generatorURL?: string;
}

/** A firing alert from its labels at `atMs`. */
export function firing(input: AlertInput, atMs: number): Alert {
  const labels = cleanLabels(input.labels);
  return {
    fingerprint: fingerprint(labels),
    labels,
    annotations: cleanLabels(input.annotations ?? {}),
    state: 'firing',
    startsAt: new Date(atMs).toISOString(),
    endsAt: null,
    source: input.source,
    ...(input.generatorURL ? { generatorURL: input.generatorURL } : {}),
  };
}

/** `{alertname="MonitorDown", service="shop"}`: how Prometheus prints a label set. */
export function formatLabels(labels: Labels): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ')}}`;
}
