/**
 * A random nft ruleset that rewrites what later rules test (dnat in prerouting, mark set, filter rules on the
 * rewritten fields): the incremental diff's and the plan's property tests run on it.
 */
import { rng } from '../lab/generate.js';

/** A random ruleset with rewrites: dnat/snat in nat chains, mark set, and filter rules that test what they rewrite. */
export function rewritingRuleset(seed: number): string {
  const r = rng(seed);
  const addr = () => `10.${r.int(0, 3)}.${r.int(0, 3)}.${r.int(1, 9)}`;
  const port = () => r.pick([22, 53, 80, 443, 8080, 9000]);
  const match = () =>
    [
      r.chance(0.4) ? `ip daddr ${addr()}` : '',
      r.chance(0.3) ? `ip saddr ${addr()}` : '',
      r.chance(0.5) ? `tcp dport ${port()}` : '',
      r.chance(0.2) ? `meta mark ${r.pick(['0x1', '0x2', '0x0'])}` : '',
      r.chance(0.2) ? `iifname "${r.pick(['eth0', 'eth1'])}"` : '',
    ]
      .filter(Boolean)
      .join(' ');
  const lines = ['table ip t {'];
  lines.push('  chain pre {', '    type nat hook prerouting priority dstnat; policy accept;');
  for (let i = 0; i < r.int(2, 6); i++) {
    const x = r.next();
    if (x < 0.5) lines.push(`    ${match()} tcp dport ${port()} dnat to ${addr()}:${port()}`);
    else if (x < 0.8) lines.push(`    ${match()} meta mark set ${r.pick(['0x1', '0x2'])}`);
    else lines.push(`    ${match()} jump marks`);
  }
  lines.push('  }', '  chain marks {');
  for (let i = 0; i < r.int(1, 3); i++) lines.push(`    ${match()} meta mark set ${r.pick(['0x1', '0x2'])}`);
  lines.push('    return', '  }');
  for (const [name, hook] of [
    ['in', 'input'],
    ['fwd', 'forward'],
  ] as const) {
    lines.push(
      `  chain ${name} {`,
      `    type filter hook ${hook} priority filter; policy ${r.pick(['accept', 'drop'])};`,
    );
    for (let i = 0; i < r.int(3, 9); i++)
      lines.push(`    ${match()} ${r.pick(['accept', 'drop', 'reject', 'jump sub'])}`);
    lines.push('  }');
  }
  lines.push('  chain sub {');
  for (let i = 0; i < r.int(1, 4); i++) lines.push(`    ${match()} ${r.pick(['accept', 'drop', 'return'])}`);
  lines.push('  }');
  lines.push('  chain post {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (let i = 0; i < r.int(1, 3); i++)
    lines.push(`    ${match()} ${r.pick(['masquerade', `snat to ${addr()}`, 'meta mark set 0x2'])}`);
  lines.push('  }', '}');
  return `${lines.join('\n')}\n`;
}
