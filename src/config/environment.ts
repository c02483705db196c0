/**
 * What kind of site or host a rampart.yaml declares (issue 18, docs/config.md): `production` (what an unmarked one
 * is taken for), `staging` or `lab`. Drills break things on purpose, so `rampart drill run` acts only on hosts marked
 * `staging` or `lab` (src/lab/drills/safety.ts). A host's own `environment` wins over the site's.
 *
 *   site: {name: shop, environment: staging}
 *   hosts:
 *     - {name: web1, addresses: [192.0.2.11], environment: lab}
 */
import { z } from 'zod';
import { didYouMean } from './did-you-mean.js';

export const ENVIRONMENTS = ['production', 'staging', 'lab'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
export const ENVIRONMENT_EXPECTED = `one of ${ENVIRONMENTS.join(', ')}`;

/** The problem with an environment's text, in words (undefined: valid). */
export function environmentProblem(text: string): string | undefined {
  if ((ENVIRONMENTS as readonly string[]).includes(text)) return undefined;
  return `unknown environment${didYouMean(text, [...ENVIRONMENTS])}`;
}

export const environmentField = z
  .string({ error: ENVIRONMENT_EXPECTED })
  .superRefine((text, ctx) => {
    const problem = environmentProblem(text);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: ENVIRONMENT_EXPECTED, params: { problem } });
  })
  .transform((t) => t as Environment);
