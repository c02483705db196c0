/**
 * prepareApply (pure): what the agent's one atomic transaction contains, and what it refuses before anything runs.
 */
import { describe, expect, it } from 'vitest';
import { prepareApply, restoreInput, splitIptablesDump } from '../../src/agent/firewall-exec.js';
import { ParseError, UserError } from '../../src/errors.js';

const NFT = { firewall: 'nftables', tables: ['inet filter'] } as const;
const IPT = { firewall: 'iptables', tables: ['filter'] } as const;

const FILTER = `table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    tcp dport 22 accept
  }
}
`;

function refusal(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error('expected a refusal');
}

describe('prepareApply: nft text', () => {
  it('replaces the managed table: create-if-missing, delete, then the desired text, line numbers kept', () => {
    const out = prepareApply(NFT, { text: FILTER, format: 'nft-text' });
    const lines = out.split('\n');
    expect(lines[0]).toBe('table inet filter; delete table inet filter; table inet filter {');
    expect(lines.slice(1).join('\n')).toBe(FILTER.split('\n').slice(1).join('\n'));
  });

  it('removes flush ruleset statements but keeps every other line where it was', () => {
    const text = `flush ruleset\n${FILTER}`;
    const out = prepareApply(NFT, { text, format: 'nft-text' });
    expect(out).not.toContain('flush');
    expect(out.split('\n')).toHaveLength(text.split('\n').length);
    expect(out.split('\n')[1]).toBe('table inet filter {');
  });

  it('removes `flush ruleset` written with a family or after a `;`', () => {
    const out = prepareApply(NFT, { text: `define p = 22; flush ruleset ip; ${FILTER}`, format: 'nft-text' });
    expect(out).not.toContain('flush');
    expect(out).toContain('define p = 22;');
  });

  it('refuses a table the agent does not manage, with its line and column', () => {
    const e = refusal(() =>
      prepareApply(NFT, { text: `${FILTER}table ip keepme {\n}\n`, format: 'nft-text', file: 'web1.nft' }),
    );
    expect(e.message).toContain('web1.nft:7:10');
    expect(e.message).toContain('table ip keepme');
    expect(e.message).toContain('inet filter');
  });

  it('refuses `flush ruleset` together with a delete of an unmanaged table', () => {
    const e = refusal(() =>
      prepareApply(NFT, {
        text: `flush ruleset\ntable ip keepme\ndelete table ip keepme\n${FILTER}`,
        format: 'nft-text',
      }),
    );
    expect(e.line).toBe(2);
    expect(e.message).toContain('ip keepme');
  });

  it('refuses deleting, flushing or adding rules to an unmanaged table', () => {
    for (const [text, col] of [
      ['delete table ip keepme', 17],
      ['flush table ip nat', 16],
      ['add rule ip6 other input accept', 14],
      ['destroy table inet other', 20],
      ['chain inet filter2 input', 12],
    ] as const) {
      const e = refusal(() => prepareApply(NFT, { text: `${FILTER}${text}\n`, format: 'nft-text' }));
      expect(e.line, text).toBe(7);
      expect(e.column, text).toBe(col);
    }
  });

  it('sees through line continuations, quoted names and comments', () => {
    expect(refusal(() => prepareApply(NFT, { text: 'delete \\\n  table ip keepme\n', format: 'nft-text' })).line).toBe(
      2,
    );
    expect(
      refusal(() => prepareApply(NFT, { text: 'table ip "keepme" {\n}\n', format: 'nft-text' })).message,
    ).toContain('ip keepme');
    const out = prepareApply(NFT, { text: `# delete table ip keepme\n${FILTER}`, format: 'nft-text' });
    expect(out).toContain('# delete table ip keepme');
  });

  it('takes a table without family as family ip (nft does) and refuses it', () => {
    const e = refusal(() => prepareApply(NFT, { text: 'table filter {\n}\n', format: 'nft-text' }));
    expect(e.message).toContain('table ip filter');
  });

  it('refuses includes and table names or commands taken from variables', () => {
    expect(refusal(() => prepareApply(NFT, { text: 'include "/etc/x.nft"\n', format: 'nft-text' })).message).toContain(
      'include',
    );
    expect(
      refusal(() => prepareApply(NFT, { text: 'define t = keepme\ndelete table ip $t\n', format: 'nft-text' })).line,
    ).toBe(2);
    expect(
      refusal(() => prepareApply(NFT, { text: 'define d = delete\n$d table ip keepme\n', format: 'nft-text' })).line,
    ).toBe(2);
  });

  it('does not mistake words inside a table or a string for commands', () => {
    const text = `table inet filter {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 1 accept comment "delete table ip x; flush ruleset"\n  }\n}\n`;
    const out = prepareApply(NFT, { text, format: 'nft-text' });
    expect(out).toContain('"delete table ip x; flush ruleset"');
  });

  it('reports a syntax error of the desired ruleset before anything runs', () => {
    const e = refusal(() =>
      prepareApply(NFT, {
        text: 'table inet filter {\n  chain input {\n    tcp dport 22 acept\n  }\n}\n',
        format: 'nft-text',
      }),
    );
    expect(e.line).toBe(3);
  });

  it('manages several tables: each is replaced, none other allowed', () => {
    const target = { firewall: 'nftables', tables: ['inet filter', 'ip nat'] } as const;
    const out = prepareApply(target, { text: `${FILTER}table ip nat {\n}\n`, format: 'nft-text' });
    expect(out.split('\n')[0]).toMatch(
      /^table inet filter; delete table inet filter; table ip nat; delete table ip nat; table inet filter \{$/,
    );
  });

  it('refuses a format that does not belong to the firewall', () => {
    expect(() => prepareApply(NFT, { text: '*filter\nCOMMIT\n', format: 'iptables-save' })).toThrow(UserError);
    expect(() => prepareApply(IPT, { text: FILTER, format: 'nft-text' })).toThrow(/iptables-save/);
  });

  it('refuses a malformed managed table name as a configuration error', () => {
    expect(() => prepareApply({ firewall: 'nftables', tables: ['filter'] }, { text: '', format: 'nft-text' })).toThrow(
      /FAMILY NAME/,
    );
  });
});

describe('prepareApply: nft JSON', () => {
  const doc = (items: unknown[]) => JSON.stringify({ nftables: items }, null, 1);
  const table = { table: { family: 'inet', name: 'filter', handle: 7 } };
  const chain = {
    chain: {
      family: 'inet',
      table: 'filter',
      name: 'input',
      handle: 1,
      type: 'filter',
      hook: 'input',
      prio: 0,
      policy: 'drop',
    },
  };
  const rule = {
    rule: {
      family: 'inet',
      table: 'filter',
      chain: 'input',
      handle: 4,
      expr: [
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 22 } },
        { accept: null },
      ],
    },
  };

  it('builds one JSON transaction: add+delete of each managed table, then the objects without handles', () => {
    const out = JSON.parse(
      prepareApply(NFT, {
        text: doc([{ metainfo: { json_schema_version: 1 } }, { flush: { ruleset: null } }, table, chain, rule]),
        format: 'nft-json',
      }),
    ) as { nftables: Record<string, Record<string, Record<string, unknown>>>[] };
    expect(out.nftables[0]).toEqual({ add: { table: { family: 'inet', name: 'filter' } } });
    expect(out.nftables[1]).toEqual({ delete: { table: { family: 'inet', name: 'filter' } } });
    expect(out.nftables.slice(2).map((o) => Object.keys(o.add ?? {})[0])).toEqual(['table', 'chain', 'rule']);
    expect(JSON.stringify(out)).not.toContain('handle');
  });

  it('refuses an object of an unmanaged table, located in the text', () => {
    const text = doc([table, { table: { family: 'ip', name: 'keepme' } }]);
    const e = refusal(() => prepareApply(NFT, { text, format: 'nft-json' }));
    expect(e.message).toContain('nftables[1]');
    expect(e.message).toContain('ip keepme');
    expect(e.line).toBe(text.split('\n').findIndex((l) => l.includes('keepme')) - 2);
  });

  it('refuses objects the analysis ignores but nft would apply (a counter in another table)', () => {
    const e = refusal(() =>
      prepareApply(NFT, {
        text: doc([table, { counter: { family: 'ip', table: 'keepme', name: 'c' } }]),
        format: 'nft-json',
      }),
    );
    expect(e.message).toContain('ip keepme');
  });

  it('refuses commands other than add/create', () => {
    const e = refusal(() =>
      prepareApply(NFT, { text: doc([{ delete: { table: { family: 'ip', name: 'keepme' } } }]), format: 'nft-json' }),
    );
    expect(e.message).toContain('"delete"');
  });

  it('reports invalid JSON with its position', () => {
    const e = refusal(() => prepareApply(NFT, { text: '{"nftables": [\n  {"table": }\n]}', format: 'nft-json' }));
    expect(e.line).toBe(2);
  });
});

describe('prepareApply: iptables-save', () => {
  const V4 = `# Generated by iptables-save v1.8.9 (nf_tables) on Tue Nov 24 09:19:56 2026
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
# Completed on Tue Nov 24 09:19:56 2026
`;
  const V6 = V4.replace(/iptables-save/g, 'ip6tables-save').replace('--dport 22', '--dport 2222');
  const NAT = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
`;

  it('applies a plain dump to IPv4 only', () => {
    const out = prepareApply(IPT, { text: V4, format: 'iptables-save' });
    const { ipv4, ipv6 } = splitIptablesDump(out);
    expect(ipv4).toContain('--dport 22 -j ACCEPT');
    expect(ipv6).toBe('');
  });

  it('splits a concatenated v4+v6 dump at the ip6tables-save header', () => {
    const out = prepareApply(IPT, { text: V4 + V6, format: 'iptables-save' });
    const { ipv4, ipv6 } = splitIptablesDump(out);
    expect(ipv4).toContain('--dport 22 ');
    expect(ipv4).not.toContain('2222');
    expect(ipv6).toContain('--dport 2222');
  });

  it('refuses a table block the agent does not manage', () => {
    const e = refusal(() => prepareApply(IPT, { text: V4 + NAT, format: 'iptables-save', file: 'web1.rules' }));
    expect(e.message).toContain('web1.rules:9:2');
    expect(e.message).toContain('nat');
  });

  it('reports a syntax error with its position', () => {
    const e = refusal(() =>
      prepareApply(IPT, { text: '*filter\n:INPUT DROPP [0:0]\nCOMMIT\n', format: 'iptables-save' }),
    );
    expect(e.line).toBe(2);
  });
});

describe('restoreInput', () => {
  it('deletes absent tables and recreates present ones from their listing', () => {
    const input = restoreInput(
      { firewall: 'nftables', tables: ['inet filter', 'ip nat'] },
      {
        firewall: 'nftables',
        takenAt: '2026-01-01T00:00:00Z',
        tables: [
          { table: 'inet filter', state: 'present', text: 'table inet filter {\n}\n' },
          { table: 'ip nat', state: 'absent' },
        ],
      },
    );
    expect(input).toBe(
      'table inet filter\ndelete table inet filter\ntable ip nat\ndelete table ip nat\ntable inet filter {\n}\n',
    );
  });

  it('refuses a snapshot of the other firewall', () => {
    expect(() => restoreInput(IPT, { firewall: 'nftables', takenAt: '2026-01-01T00:00:00Z', tables: [] })).toThrow(
      /cannot restore an nftables snapshot/,
    );
  });
});
