/**
 * The page's one way to the server: the JSON API on the session cookie. Changes carry the session's CSRF header
 * (the server refuses them without it); errors are the API's problem documents, shown as they are.
 */

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, picked apart by the pages
export type Json = any;

export interface Me {
  readonly name: string;
  readonly role: 'viewer' | 'operator' | 'approver' | 'admin';
  readonly tokenId: string;
  readonly expiresAt: string;
  readonly csrf: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = '';

export function setCsrf(value: string): void {
  csrf = value;
}

export async function api(method: string, path: string, body?: unknown): Promise<Json> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-rampart-csrf'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const data = type.includes('json') && text ? JSON.parse(text) : text;
  if (!res.ok) {
    const detail = typeof data === 'object' && data ? (data.detail ?? data.title) : String(data);
    throw new ApiError(res.status, typeof data === 'object' && data ? data.code : 'HTTP', detail || res.statusText);
  }
  return data;
}

/** Signs in with an API token: the token is sent once, in this request's header, and kept nowhere. */
export async function signIn(token: string): Promise<Me> {
  const res = await fetch('/api/v1/session', {
    method: 'POST',
    headers: { authorization: `Bearer ${token.trim()}`, accept: 'application/json' },
    credentials: 'same-origin',
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.code ?? 'HTTP', data.detail ?? res.statusText);
  setCsrf(data.csrf);
  return data as Me;
}

export async function whoAmI(): Promise<Me | null> {
  try {
    const me = (await api('GET', '/session')) as Me & { session?: null };
    if (!me.csrf) return null;
    setCsrf(me.csrf);
    return me;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

const ORDER = ['viewer', 'operator', 'approver', 'admin'] as const;
/** Whether the role may do what needs `need` (the server checks again; this only hides what would be refused). */
export function may(me: Me, need: (typeof ORDER)[number]): boolean {
  return ORDER.indexOf(me.role) >= ORDER.indexOf(need);
}
