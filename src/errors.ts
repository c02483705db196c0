/**
 * One registry of coded errors, as Fastify does with FST_ERR_*. User errors (bad input) and internal errors are
 * different classes; each code has a message template, an HTTP status and a CLI exit code.
 */

export interface ErrorSpec {
  readonly status: number;
  readonly exit: number;
  readonly user: boolean;
}

export const ERRORS = {
  RAMPART_ERR_PARSE: { status: 400, exit: 2, user: true },
  RAMPART_ERR_FORMAT_UNKNOWN: { status: 400, exit: 2, user: true },
  RAMPART_ERR_USAGE: { status: 400, exit: 2, user: true },
  RAMPART_ERR_FILE: { status: 400, exit: 2, user: true },
  RAMPART_ERR_PACKET: { status: 400, exit: 2, user: true },
  RAMPART_ERR_NO_CHAIN: { status: 400, exit: 2, user: true },
  RAMPART_ERR_LOOP: { status: 422, exit: 2, user: true },
  RAMPART_ERR_CONFIG: { status: 400, exit: 2, user: true },
  /** Request body, query or parameters fail their schema. */
  RAMPART_ERR_VALIDATION: { status: 400, exit: 2, user: true },
  RAMPART_ERR_TOO_LARGE: { status: 413, exit: 2, user: true },
  RAMPART_ERR_UNAUTHENTICATED: { status: 401, exit: 3, user: true },
  RAMPART_ERR_FORBIDDEN: { status: 403, exit: 3, user: true },
  /** Too many failed authentications from this address or for this token: wait (Retry-After). */
  RAMPART_ERR_RATE_LIMITED: { status: 429, exit: 3, user: true },
  RAMPART_ERR_NOT_FOUND: { status: 404, exit: 4, user: true },
  /** The transition is not allowed from the change's current state. */
  RAMPART_ERR_STATE: { status: 409, exit: 5, user: true },
  /** Someone else changed the record first (optimistic check). */
  RAMPART_ERR_CONFLICT: { status: 409, exit: 5, user: true },
  /** The plan is blocked (closes a public service or violates a must-allow intent) and has no admin override. */
  RAMPART_ERR_BLOCKED: { status: 409, exit: 5, user: true },
  /** The plan is stale: the change or a host's desired state moved on after it was computed. */
  RAMPART_ERR_STALE: { status: 409, exit: 5, user: true },
  /** Inside a freeze window without an emergency reason. */
  RAMPART_ERR_FROZEN: { status: 409, exit: 5, user: true },
  /** The review policy refuses this review (own change, not an approver, already reviewed). */
  RAMPART_ERR_REVIEW: { status: 403, exit: 5, user: true },
  /** The plan took longer than `policy.plan-timeout`: the change is left in state plan-failed. */
  RAMPART_ERR_PLAN_TIMEOUT: { status: 422, exit: 5, user: true },
  /** The plan needed more memory than `policy.plan-memory`: the change is left in state plan-failed. */
  RAMPART_ERR_PLAN_MEMORY: { status: 422, exit: 5, user: true },
  /** The server could not be reached or answered something that is not Rampart's API. */
  RAMPART_ERR_SERVER: { status: 502, exit: 6, user: true },
  RAMPART_ERR_INTERNAL: { status: 500, exit: 70, user: false },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class RampartError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'RampartError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ERRORS[this.code].status;
  }
  get exitCode(): number {
    return ERRORS[this.code].exit;
  }
}

/** Bad input from the user: the message says where and what would be valid. */
export class UserError extends RampartError {}

/** A parse error names file:line:column, the offending token and what was expected. */
export class ParseError extends UserError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly token: string;
  readonly expected: string;
  constructor(file: string, line: number, column: number, token: string, expected: string, message?: string) {
    const shown = token === '' ? 'end of input' : `'${token.length > 40 ? `${token.slice(0, 40)}...` : token}'`;
    super('RAMPART_ERR_PARSE', `${file}:${line}:${column}: ${message ?? `unexpected ${shown}`}; expected ${expected}`, {
      file,
      line,
      column,
      token,
      expected,
    });
    this.name = 'ParseError';
    this.file = file;
    this.line = line;
    this.column = column;
    this.token = token;
    this.expected = expected;
  }
}

export class InternalError extends RampartError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('RAMPART_ERR_INTERNAL', message, details);
    this.name = 'InternalError';
  }
}
