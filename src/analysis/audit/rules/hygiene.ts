import type { AuditRule } from '../types.js';

export const HYGIENE_RULES: readonly AuditRule[] = [];
