/**
 * Hygiene audit rules: findings about the ruleset itself, that need no declared site (rampart.yaml). Grouped by
 * theme in hygiene-*.ts; docs/rules/<id>.md documents each.
 */
import type { AuditRule } from '../types.js';
import { METADATA_RULES } from './hygiene-metadata.js';
import { TRAFFIC_RULES } from './hygiene-traffic.js';
import { UNREACHABLE_RULES } from './hygiene-unreachable.js';

export const HYGIENE_RULES: readonly AuditRule[] = [...UNREACHABLE_RULES, ...TRAFFIC_RULES, ...METADATA_RULES];
