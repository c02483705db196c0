/**
 * The `status-page:` section of rampart.yaml (issue 16 §6, issue 17): what the public status page (`GET /status`,
 * `GET /status.json`, no sign-in) may show. Nothing is public unless listed here; a service is shown by the display
 * name given, never by its internal name, hosts or addresses:
 *
 *   status-page:
 *     title: Example Shop status
 *     services:
 *       - {service: shop, name: Web shop}     # `service` must be one of services:; `name` is what customers read
 */
import { z } from 'zod';
import { didYouMean } from './did-you-mean.js';
import { expect, nameField, object } from './schema-kit.js';

export interface PublicService {
  /** The service in `services:` (never shown). */
  readonly service: string;
  /** What the page shows. */
  readonly name: string;
}

export interface StatusPageConfig {
  readonly title: string;
  readonly services: readonly PublicService[];
}

const text = (what: string) =>
  z
    .string(expect(`${what}: text of 1-100 characters`))
    .trim()
    .min(1, expect(`${what}: text of 1-100 characters`))
    .max(100, expect(`${what}: text of 1-100 characters`));

export const StatusPageSchema = object(
  {
    title: text('the page title').optional(),
    services: z
      .array(
        object(
          { service: nameField('a service of services:'), name: text('the name customers read').optional() },
          'a map with service and name',
        ),
        expect('a list of {service, name}'),
      )
      .optional(),
  },
  'a map with title and services',
);

/**
 * The section with its defaults, after checking that each public service exists and is listed once; `problem`
 * reports at the entry's `service` field.
 */
export function statusPageOf(
  parsed: z.output<typeof StatusPageSchema> | undefined,
  serviceNames: readonly string[] | undefined,
  problem: (path: (string | number)[], problem: string, expected: string) => void,
): StatusPageConfig | undefined {
  if (!parsed) return undefined;
  const seen = new Set<string>();
  const services: PublicService[] = [];
  (parsed.services ?? []).forEach((s, i) => {
    const path = ['status-page', 'services', i, 'service'];
    if (serviceNames && !serviceNames.includes(s.service)) {
      problem(
        path,
        `unknown service '${s.service}'${didYouMean(s.service, [...serviceNames])}`,
        serviceNames.length > 0
          ? `one of the services: ${serviceNames.join(', ')}`
          : 'a service declared under services:',
      );
      return;
    }
    if (seen.has(s.service)) {
      problem(path, `service '${s.service}' is listed twice`, 'each public service once');
      return;
    }
    seen.add(s.service);
    services.push({ service: s.service, name: s.name ?? s.service });
  });
  // The default title names nothing (the site's name may be internal).
  return { title: parsed.title ?? 'Service status', services };
}
