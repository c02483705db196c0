/**
 * Where a drill may act (issue 18, docs/drills.md): drills break things on purpose, so they act only on hosts that
 * rampart.yaml marks as a lab or staging (`environment: lab|staging` on the host, or on the site for every host,
 * including the ones it does not declare, such as an unmanaged load balancer). Pure: the parsed config in, the
 * refusal out. `rampart drill run` checks the lab's own rampart.yaml before the first fault, and a `--config` site
 * before anything else.
 */
import type { RampartConfig } from '../../config/types.js';

export const DRILL_ENVIRONMENTS = ['lab', 'staging'] as const;

export interface UnmarkedHost {
  readonly host: string;
  /** What it is marked as, or undefined when neither it nor the site says. */
  readonly environment?: string;
  /** Where it is declared (file:line:column), when it is. */
  readonly at?: string;
}

/** The hosts among `touched` that a drill may not act on. */
export function unmarkedHosts(config: RampartConfig, touched: readonly string[]): UnmarkedHost[] {
  const out: UnmarkedHost[] = [];
  for (const name of touched) {
    const h = config.hosts.find((x) => x.name === name);
    const env = h?.environment ?? config.environment;
    if (env === 'lab' || env === 'staging') continue;
    out.push({
      host: name,
      ...(env !== undefined ? { environment: env } : {}),
      ...(h ? { at: `${h.at.file}:${h.at.line}:${h.at.column}` } : {}),
    });
  }
  return out;
}

/** Why a drill may not run on `touched` hosts of this site, in words; undefined when every one is marked. */
export function drillRefusal(config: RampartConfig, touched: readonly string[]): string | undefined {
  const bad = unmarkedHosts(config, touched);
  if (bad.length === 0) return undefined;
  const list = bad
    .map(
      (b) =>
        `${b.host} (${b.at ?? 'not declared in the file'}: ${b.environment ? `environment ${b.environment}` : 'not marked'})`,
    )
    .join(', ');
  return `${config.file}: drills act only on hosts marked as lab or staging, and these are not: ${list}; mark each host with 'environment: staging' (or lab), or the whole site with 'site: {name: ..., environment: staging}' (docs/config.md)`;
}
