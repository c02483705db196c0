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
  token?: string;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('API tokens (admin): create, list, revoke');
  addClientOptions(token.command('create').description('create a token; its secret is printed once'))
    .requiredOption('--name <name>', 'who the token speaks for (shown as the actor in the audit log)')
    .requiredOption(
      '--role <role>',
      `one of ${TOKEN_ROLES.join(', ')} (agent: for the agent of the host named by --name)`,
    )
    .option('--json', 'print the answer as JSON')
    .action(async (o: ClientCliOptions & { name: string; role: string; json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const t = await clientFrom(o).request<TokenView>('POST', '/tokens', { name: o.name, role: o.role });
        if (o.json) printJson(t);
        else process.stdout.write(`token ${t.id} for ${t.name} (${t.role}); shown once:\n\n  ${t.token}\n`);
      }),
    );
  addClientOptions(token.command('list').description('list tokens (never their secrets)'))
    .option('--json', 'print the answer as JSON')
    .action(async (o: ClientCliOptions & { json?: boolean }) =>
      run(Boolean(o.json), async () => {
        const { tokens } = await clientFrom(o).request<{ tokens: TokenView[] }>('GET', '/tokens');
        if (o.json) return printJson({ tokens });
        const rows = tokens.map((t) =>
          [
            t.id,
            t.name,
            t.role,
            t.createdAt.slice(0, 19).replace('T', ' '),
            t.revokedAt ? `revoked ${t.revokedAt.slice(0, 10)}` : 'active',
          ].join('  '),
        );
        process.stdout.write(`${['id        name  role  created  status', ...rows].join('\n')}\n`);
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
