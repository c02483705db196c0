/**
 * The audit rule catalogue: every rule Rampart checks, by stable id. Rules live in rules/*.ts grouped by theme;
 * docs/rules/<id>.md documents each (a test fails when a page is missing).
 */
import { HYGIENE_RULES } from './rules/hygiene.js';
import { SERVICE_RULES } from './rules/service.js';
import type { AuditRule } from './types.js';

export const AUDIT_RULES: readonly AuditRule[] = [...SERVICE_RULES, ...HYGIENE_RULES];

const BY_ID = new Map(AUDIT_RULES.map((r) => [r.id, r]));

export function auditRule(id: string): AuditRule | undefined {
  return BY_ID.get(id);
}
