/**
 * The CLI's side of the API: where the server is and which token to send (flags, then RAMPART_SERVER /
 * RAMPART_TOKEN, then the client file), and requests that turn problem+json answers back into coded errors.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ERRORS, type ErrorCode, UserError } from '../errors.js';

export interface ClientCliOptions {
  readonly server?: string;
  readonly token?: string;
  readonly clientConfig?: string;
}

export interface Client {
  readonly server: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  text(method: string, path: string): Promise<string>;
}

export function addClientOptions(cmd: Command): Command {
  return cmd
    .option(
      '--server <url>',
      'Rampart server (default $RAMPART_SERVER, then the client file, then http://127.0.0.1:8470)',
    )
    .option(
      '--token <token>',
      'API token (default $RAMPART_TOKEN, then the client file); prefer the variable: flags show in ps',
    )
    .option(
      '--client-config <file>',
      'YAML with server: and token: (default ~/.config/rampart/client.yaml; must not be readable by others)',
    );
}

function clientFile(o: ClientCliOptions): { server?: string; token?: string } {
  const path =
    o.clientConfig ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'rampart', 'client.yaml');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    if (o.clientConfig) throw new UserError('RAMPART_ERR_FILE', `${path}: cannot read the client config`);
    return {};
  }
  // Like ssh with private keys: a token file others can read is refused.
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new UserError('RAMPART_ERR_FILE', `${path}: holds a token but is readable by others; chmod 600 it`);
  }
  const doc = parseYaml(text) as Record<string, unknown> | null;
  const out: { server?: string; token?: string } = {};
  if (typeof doc?.server === 'string') out.server = doc.server;
  if (typeof doc?.token === 'string') out.token = doc.token;
  return out;
}

export function clientFrom(o: ClientCliOptions): Client {
  const file = o.server && o.token ? {} : clientFile(o);
  const server = (o.server || process.env.RAMPART_SERVER || file.server || 'http://127.0.0.1:8470').replace(/\/+$/, '');
  const token = o.token || process.env.RAMPART_TOKEN || file.token;
  if (!/^https?:\/\/[^/]+$/.test(server)) {
    throw new UserError('RAMPART_ERR_USAGE', `--server: '${server}' is not a server URL; expected http(s)://HOST:PORT`);
  }
  const call = async (method: string, path: string, body?: unknown): Promise<Response> => {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json, text/*' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${server}/api/v1${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? String(e);
      throw new UserError(
        'RAMPART_ERR_SERVER',
        `cannot reach the Rampart server at ${server} (${cause}); is 'rampart serve' running?`,
      );
    }
    if (res.ok) return res;
    const text = await res.text();
    let problem: { code?: string; detail?: string; errors?: { field: string; message: string }[] } = {};
    try {
      problem = JSON.parse(text);
    } catch {
      // not ours
    }
    const code = (problem.code && problem.code in ERRORS ? problem.code : 'RAMPART_ERR_SERVER') as ErrorCode;
    let detail = problem.detail ?? `HTTP ${res.status} from ${server}: ${text.slice(0, 200)}`;
    if (code === 'RAMPART_ERR_UNAUTHENTICATED' && !token) {
      detail = `no token: give one with RAMPART_TOKEN=rpt_..., --token rpt_..., or 'token:' in ~/.config/rampart/client.yaml (mode 600); an admin creates tokens with 'rampart token create' (the first one comes from 'rampart init')`;
    }
    const fields = (problem.errors ?? [])
      .filter((f) => !detail.includes(f.message))
      .map((f) => `\n  ${f.field}: ${f.message}`);
    throw new UserError(code, `${detail}${fields.join('')}`, {
      status: res.status,
      ...(problem.errors ? { errors: problem.errors } : {}),
    });
  };
  return {
    server,
    request: async <T>(method: string, path: string, body?: unknown) =>
      (await (await call(method, path, body)).json()) as T,
    text: async (method: string, path: string) => (await call(method, path)).text(),
  };
}
