/**
 * RFC 9457 problem details: every error the API returns is `application/problem+json` with the Rampart error code,
 * a human detail and, for bad input, the fields that failed (`errors[].field` like `body.target.host`).
 */
import { ERRORS, type ErrorCode, RampartError } from '../errors.js';

export interface FieldProblem {
  /** Where: `body.reason`, `query.limit`, `params.id`, or `body.ruleset` with a line:column for parse errors. */
  readonly field: string;
  readonly message: string;
}

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly instance?: string;
  readonly errors?: readonly FieldProblem[];
  readonly [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Partial<Record<ErrorCode, string>> = {
  RAMPART_ERR_VALIDATION: 'Request validation failed',
  RAMPART_ERR_PARSE: 'Ruleset or config could not be parsed',
  RAMPART_ERR_TOO_LARGE: 'Request body too large',
  RAMPART_ERR_UNAUTHENTICATED: 'Authentication required',
  RAMPART_ERR_FORBIDDEN: 'Role not allowed',
  RAMPART_ERR_RATE_LIMITED: 'Too many failed authentications',
  RAMPART_ERR_PLAN_TIMEOUT: 'Plan took too long',
  RAMPART_ERR_PLAN_MEMORY: 'Plan needed too much memory',
  RAMPART_ERR_NOT_FOUND: 'Not found',
  RAMPART_ERR_STATE: 'Invalid state transition',
  RAMPART_ERR_CONFLICT: 'Conflicting update',
  RAMPART_ERR_BLOCKED: 'Plan is blocked',
  RAMPART_ERR_STALE: 'Plan is stale',
  RAMPART_ERR_FROZEN: 'Freeze window in force',
  RAMPART_ERR_REVIEW: 'Review refused by policy',
  RAMPART_ERR_CONFIG: 'Invalid configuration',
  RAMPART_ERR_INTERNAL: 'Internal error',
};

export function problemOf(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  return {
    type: `https://rampart.dev/problems/${code
      .replace(/^RAMPART_ERR_/, '')
      .toLowerCase()
      .replaceAll('_', '-')}`,
    title: TITLES[code] ?? code,
    status: ERRORS[code].status,
    detail,
    code,
    ...extra,
  };
}

/** A problem for any thrown value; internal errors keep their details out of the response. */
export function problemFromError(e: unknown): Problem {
  if (e instanceof RampartError && ERRORS[e.code].user) {
    const { issues, ...details } = e.details as Record<string, unknown> & { issues?: unknown };
    const extra: Record<string, unknown> = { ...details };
    if (Array.isArray(issues)) {
      extra.errors = issues.map((i: { path?: string; message?: string }) => ({
        field: i.path ?? '',
        message: i.message ?? '',
      }));
    }
    return problemOf(e.code, e.message, extra);
  }
  return problemOf('RAMPART_ERR_INTERNAL', 'internal error; the server log has the details');
}
