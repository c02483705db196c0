import type { AuditRule } from '../types.js';

export const SERVICE_RULES: readonly AuditRule[] = [];
