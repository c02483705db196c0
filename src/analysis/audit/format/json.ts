/**
 * `--format json`: `{"findings": [...], "summary": {...}, "suppressed": [...], "skipped": [...]}`. These field names
 * are a stable interface for scripts and CI; add fields, never rename them. Values are JSON-native (bigints, should
 * any appear, become decimal strings), so `JSON.stringify` needs no replacer.
 */
import type { AuditReport, Finding, FindingLocation } from '../types.js';

export interface JsonLocation {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
}

export interface JsonFinding {
  readonly rule: string;
  readonly severity: string;
  readonly message: string;
  readonly location: JsonLocation;
  readonly text?: string;
  readonly example?: Record<string, unknown>;
  readonly related?: readonly { message: string; location?: JsonLocation; text?: string; detail?: true }[];
  readonly uncertain?: boolean;
}

export interface JsonReport {
  readonly findings: readonly JsonFinding[];
  readonly summary: {
    readonly file: string;
    readonly host?: string;
    readonly total: number;
    readonly bySeverity: Record<string, number>;
    readonly failOn: string;
    readonly failed: boolean;
    readonly rulesRun: number;
  };
  readonly suppressed: readonly { rule: string; justification: string }[];
  readonly skipped: readonly { rule: string; reason: string }[];
}

/** A deep copy with bigints as strings and undefined members dropped. */
function plain(value: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

function location(loc: FindingLocation | undefined, file: string): JsonLocation {
  if (!loc) return { file };
  return { file: loc.file, line: loc.line, ...(loc.column !== undefined ? { column: loc.column } : {}) };
}

function finding(f: Finding, file: string): JsonFinding {
  return {
    rule: f.rule,
    severity: f.severity,
    message: f.message,
    location: location(f.location, file),
    ...(f.text !== undefined ? { text: f.text } : {}),
    ...(f.example ? { example: plain(f.example) } : {}),
    ...(f.related && f.related.length > 0
      ? {
          related: f.related.map((r) => ({
            message: r.message,
            ...(r.location ? { location: location(r.location, file) } : {}),
            ...(r.text !== undefined ? { text: r.text } : {}),
            ...(r.detail ? { detail: true as const } : {}),
          })),
        }
      : {}),
    ...(f.uncertain ? { uncertain: true } : {}),
  };
}

export function auditJson(report: AuditReport): JsonReport {
  return {
    findings: report.findings.map((f) => finding(f, report.file)),
    summary: {
      file: report.file,
      ...(report.host !== undefined ? { host: report.host } : {}),
      total: report.summary.total,
      bySeverity: { ...report.summary.bySeverity },
      failOn: report.summary.failOn,
      failed: report.summary.failed,
      rulesRun: report.summary.rulesRun,
    },
    suppressed: report.suppressed.map((s) => ({ rule: s.rule, justification: s.justification })),
    skipped: report.skipped.map((s) => ({ rule: s.rule, reason: s.reason })),
  };
}

export function renderJson(report: AuditReport): string {
  return `${JSON.stringify(auditJson(report), null, 2)}\n`;
}
