/**
 * What a notifier's attempt came to, and the HTTP classification every HTTP notifier shares: 2xx delivered; 408,
 * 425, 429, 5xx, a timeout or a network error retried (honouring Retry-After); any other status a permanent failure
 * (a 400 from PagerDuty is an invalid event: sending it again cannot help).
 */

export type SendResult =
  | { readonly outcome: 'ok'; readonly detail?: string | undefined }
  | { readonly outcome: 'retryable'; readonly error: string; readonly retryAfterMs?: number | undefined }
  | { readonly outcome: 'permanent'; readonly error: string };

export const ok = (detail?: string): SendResult => ({ outcome: 'ok', ...(detail ? { detail } : {}) });
export const retryable = (error: string, retryAfterMs?: number): SendResult => ({
  outcome: 'retryable',
  error,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});
export const permanent = (error: string): SendResult => ({ outcome: 'permanent', error });

/** Retry-After in ms (seconds or an HTTP date), capped at an hour; undefined when absent or unreadable. */
export function retryAfterOf(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(3_600_000, Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.min(3_600_000, Math.max(0, at - nowMs)) : undefined;
}

const RETRIED = new Set([408, 425, 429]);

/** URL without user info, query or fragment: what messages and logs may show of a receiver's address. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 40 ? `${u.pathname.slice(0, 40)}...` : u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * POSTs `body` as JSON within `timeoutMs` and classifies the answer. `shown` names the destination in errors
 * without its secrets (a Slack webhook's path is its key). `nowMs` is the attempt's time, from the worker's clock:
 * what a Retry-After given as an HTTP date is counted from.
 */
export async function postJson(
  url: string,
  body: string,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
  shown: string,
  nowMs: number,
): Promise<SendResult> {
  // user:password@ in the URL (Alertmanager's basic_auth written inline) becomes an Authorization header: fetch
  // refuses URLs with credentials.
  let target = url;
  const auth: Record<string, string> = {};
  try {
    const u = new URL(url);
    if (u.username !== '' || u.password !== '') {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      auth.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      u.username = '';
      u.password = '';
      target = u.toString();
    }
  } catch {
    return permanent(`POST ${shown}: not a URL`);
  }
  let res: Response;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Rampart-Alerting', ...auth, ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    const why =
      err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.message ?? String(e));
    return retryable(`POST ${shown}: ${why}`);
  }
  let text = '';
  try {
    text = (await res.text()).slice(0, 300).replace(/\s+/g, ' ').trim();
  } catch {
    // the status is what counts
  }
  const detail = `POST ${shown}: HTTP ${res.status}${text ? ` ${text}` : ''}`;
  if (res.status >= 200 && res.status < 300) return ok(`HTTP ${res.status}`);
  if (RETRIED.has(res.status) || res.status >= 500)
    return retryable(detail, retryAfterOf(res.headers.get('retry-after'), nowMs));
  return permanent(detail);
}
