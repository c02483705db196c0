import type { Command } from 'commander';
import { TOKEN_ROLES } from '../../store/types.js';
import { addClientOptions, type ClientCliOptions, clientFrom } from '../client.js';
import { printJson, run } from '../output.js';

interface TokenView {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  expiresAt: string | null;
  token?: string;
}

/** Left-aligned columns, each as wide as its widest cell. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

const day = (iso: string | null): string => (iso ? iso.slice(0, 16).replace('T', ' ') : '-');

export function registerToken(program: Command): void {
  const token = program.command('token').description('API tokens (admin): create, list, revoke');
  addClientOptions(token.command('create').description('create a token; its secret is printed once'))
    .requiredOption('--name <name>', 'who the token speaks for (shown as the actor in the audit log)')
    .requiredOption(
      '--role <role>',
      `one of ${TOKEN_ROLES.join(', ')} (agent: for the agent of the host named by --name)`,
    )
    .option('--expires <when>', 'when it stops working: a duration (90d, 12h, 30m, 2w) or an ISO 8601 date')
    .option('--json', 'print the answer as JSON')
    .option('--token-only', 'print the token alone (for scripts: ALICE=$(rampart token create ... --token-only))')
    .action(
      async (
        o: ClientCliOptions & { name: string; role: string; expires?: string; json?: boolean; tokenOnly?: boolean },
      ) =>
        run(Boolean(o.json), async () => {
          const t = await clientFrom(o).request<TokenView>('POST', '/tokens', {
            name: o.name,
            role: o.role,
            ...(o.expires !== undefined ? { expires: o.expires } : {}),
          });
          if (o.json) printJson(t);
          else if (o.tokenOnly) process.stdout.write(`${t.token}\n`);
          else {
            const until = t.expiresAt ? `, expires ${t.expiresAt}` : '';
            process.stdout.write(`token ${t.id} for ${t.name} (${t.role}${until}); shown once:\n\n  ${t.token}\n`);
          }
        }),
    );
  addClientOptions(token.command('list').description('list tokens (never their secrets)'))
    .option('--json', 'print the answer as JSON')
    .action(async (o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const { tokens } = await clientFrom(o).request<{ tokens: TokenView[] }>('GET', '/tokens');
        if (o.json) return printJson({ tokens });
        const now = Date.now();
        const status = (t: TokenView): string =>
          t.revokedAt
            ? `revoked ${day(t.revokedAt)}`
            : t.expiresAt && Date.parse(t.expiresAt) <= now
              ? `expired ${day(t.expiresAt)}`
              : t.expiresAt
                ? `active until ${day(t.expiresAt)}`
                : 'active';
        const rows = tokens.map((t) => [
          t.id,
          t.name,
          t.role,
          day(t.createdAt),
          t.createdBy,
          day(t.lastUsedAt),
          status(t),
        ]);
        process.stdout.write(`${table([['id', 'name', 'role', 'created', 'by', 'last used', 'status'], ...rows])}\n`);
      }),
    );
  addClientOptions(
    token.command('revoke').description('revoke a token by id').argument('<id>', 'token id (8 hex digits)'),
  )
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const t = await clientFrom(o).request<TokenView>('DELETE', `/tokens/${encodeURIComponent(id)}`);
        if (o.json) printJson(t);
        else process.stdout.write(`token ${t.id} (${t.name}) revoked at ${t.revokedAt}\n`);
      }),
    );
}
