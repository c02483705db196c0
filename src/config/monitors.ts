/**
 * The `monitors:` section of rampart.yaml and the `monitor:` shorthand of a service (issue 14, docs/monitoring.md):
 * schemas with the same positioned errors as the rest of the file, and the monitors they stand for.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { Check, Monitor, VantageKind } from '../monitor/types.js';
import { durationField, expect, intField, nameField, object } from './schema-kit.js';
import type { HostConfig, ServiceConfig } from './types.js';

export const MONITOR_DEFAULTS = { intervalMs: 10_000, timeoutMs: 5_000, failures: 2, quorum: 'majority' } as const;
const VANTAGES = ['server', 'agents', 'probes'] as const;
const DNS_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS'] as const;
const URL_EXPECTED = 'an http:// or https:// URL, like https://shop.example/healthz';

const common = {
  interval: durationField(1000, 3_600_000).optional(),
  timeout: durationField(100, 120_000).optional(),
  failures: intField(1, 100, 'consecutive failures').optional(),
  quorum: z
    .union(
      [z.literal('majority'), intField(1, 1000, 'vantage points')],
      expect('majority, or a number of vantage points'),
    )
    .optional(),
  from: z
    .array(z.enum(VANTAGES, expect(`one of ${VANTAGES.join(', ')}`)), expect(`a list of: ${VANTAGES.join(', ')}`))
    .min(1, expect(`at least one of ${VANTAGES.join(', ')}`))
    .optional(),
};

const statusList = z.union(
  [intField(100, 599, 'an HTTP status'), z.array(intField(100, 599, 'an HTTP status')).min(1)],
  expect('an HTTP status or a list of them, like 200 or [200, 204]'),
);

const HttpSchema = object(
  {
    url: z
      .string(expect(URL_EXPECTED))
      .refine((u) => /^https?:\/\/[^/\s]+(\/\S*)?$/.test(u) && URL.canParse(u), expect(URL_EXPECTED)),
    method: z.enum(['GET', 'HEAD', 'POST', 'OPTIONS'], expect('GET, HEAD, POST or OPTIONS')).optional(),
    headers: z
      .record(z.string(), z.string(expect('a header value (text)')), expect('a map of header: value'))
      .optional(),
    expect: statusList.optional(),
    body: z.string(expect('text the body must contain')).min(1, expect('non-empty text')).optional(),
    'max-latency': durationField(1, 120_000).optional(),
    'tls-verify': z.boolean(expect('true or false')).optional(),
    'follow-redirects': z.boolean(expect('true or false')).optional(),
  },
  'an http check: a map with url, and optionally method, headers, expect, body, max-latency, tls-verify, follow-redirects',
);
const TcpSchema = object(
  { host: z.string(expect('a host name or address')).min(1), port: intField(1, 65535, 'a port') },
  'a tcp check: a map with host and port',
);
const TlsSchema = object(
  {
    host: z.string(expect('a host name or address')).min(1),
    port: intField(1, 65535, 'a port').optional(),
    servername: z.string(expect('the name the certificate must hold')).min(1).optional(),
    days: intField(0, 3650, 'days before expiry').optional(),
  },
  'a tls check: a map with host, and optionally port (443), servername and days (14)',
);
const DnsSchema = object(
  {
    name: z.string(expect('a DNS name')).min(1),
    type: z.enum(DNS_TYPES, expect(`one of ${DNS_TYPES.join(', ')}`)).optional(),
    expect: z.array(z.string(expect('an answer (text)')), expect('a list of answers that must be present')).optional(),
    resolver: z
      .string(expect('a resolver address'))
      .refine((a) => ipaddr.isValid(a), expect('an IPv4 or IPv6 address'))
      .optional(),
  },
  'a dns check: a map with name, and optionally type (A), expect and resolver',
);

export const MonitorSchema = object(
  {
    name: nameField('a monitor name'),
    service: nameField('a service name').optional(),
    http: HttpSchema.optional(),
    tcp: TcpSchema.optional(),
    tls: TlsSchema.optional(),
    dns: DnsSchema.optional(),
    ...common,
  },
  'a monitor: a map with name and one of http, tcp, tls or dns, and optionally service, interval, timeout, failures, quorum, from',
);
export const MonitorsSchema = z.array(MonitorSchema, expect('a list of monitors'));

/** `monitor:` on a service: true, or the settings of the monitors it stands for. */
export const ServiceMonitorSchema = z.union(
  [
    z.boolean(expect('true, or a map of monitor settings')),
    object(common, 'a map with interval, timeout, failures, quorum, from'),
  ],
  expect('true, or a map with interval, timeout, failures, quorum, from'),
);

type MonitorEntry = z.output<typeof MonitorSchema>;
type Common = Pick<MonitorEntry, 'interval' | 'timeout' | 'failures' | 'quorum' | 'from'>;

function settings(c: Common | undefined, from: readonly VantageKind[]) {
  const intervalMs = c?.interval ?? MONITOR_DEFAULTS.intervalMs;
  return {
    intervalMs,
    timeoutMs: c?.timeout ?? Math.min(MONITOR_DEFAULTS.timeoutMs, intervalMs),
    failures: c?.failures ?? MONITOR_DEFAULTS.failures,
    quorum: c?.quorum ?? MONITOR_DEFAULTS.quorum,
    from: c?.from ?? from,
  };
}

/** The check of an entry (exactly one of http, tcp, tls, dns: checked by the caller). */
export function checkOf(e: MonitorEntry): Check | undefined {
  if (e.http) {
    const ex = e.http.expect;
    return {
      kind: 'http',
      url: e.http.url,
      method: e.http.method ?? 'GET',
      headers: e.http.headers ?? {},
      expect: ex === undefined ? [200] : Array.isArray(ex) ? ex : [ex],
      ...(e.http.body !== undefined ? { body: e.http.body } : {}),
      ...(e.http['max-latency'] !== undefined ? { maxLatencyMs: e.http['max-latency'] } : {}),
      tlsVerify: e.http['tls-verify'] ?? true,
      followRedirects: e.http['follow-redirects'] ?? false,
    };
  }
  if (e.tcp) return { kind: 'tcp', host: e.tcp.host, port: e.tcp.port };
  if (e.tls) {
    return {
      kind: 'tls',
      host: e.tls.host,
      port: e.tls.port ?? 443,
      ...(e.tls.servername !== undefined ? { servername: e.tls.servername } : {}),
      minDays: e.tls.days ?? 14,
    };
  }
  if (e.dns) {
    return {
      kind: 'dns',
      name: e.dns.name,
      type: e.dns.type ?? 'A',
      expect: e.dns.expect ?? [],
      ...(e.dns.resolver !== undefined ? { resolver: e.dns.resolver } : {}),
    };
  }
  return undefined;
}

export function monitorOf(e: MonitorEntry, check: Check): Monitor {
  return {
    name: e.name,
    check,
    ...(e.service !== undefined ? { service: e.service } : {}),
    target: 'url',
    ...settings(e, ['server', 'probes']),
  };
}

/** A URL host part: IPv6 addresses in brackets. */
const urlHost = (address: string): string => (address.includes(':') ? `[${address}]` : address);

/** The address a direct check uses: the host's first IPv4 address, else its first address. */
function directAddress(h: HostConfig): string | undefined {
  return h.addresses.find((a) => !a.includes(':')) ?? h.addresses[0];
}

/**
 * The monitors a service's `monitor:` stands for: one direct check of each backend (`shop@web1`, probed by the
 * server, the probes, the host's own agent on loopback and its peers' agents through its firewall), and, when the
 * service declares its public `address`, one check through it (`shop`, the load balancer's view). The check is the
 * service's first health check, else a TCP connect to its first public port.
 */
export function serviceMonitors(service: ServiceConfig, hosts: readonly HostConfig[], c: Common | true): Monitor[] {
  const set = c === true ? undefined : c;
  const health = service.health?.[0];
  const port = health?.port ?? service.public[0]?.from;
  if (port === undefined) return [];
  const checkFor = (address: string): Check =>
    health?.kind === 'http'
      ? {
          kind: 'http',
          url: `http://${urlHost(address)}:${port}${health.path}`,
          method: 'GET',
          headers: {},
          expect: [health.expect],
          tlsVerify: true,
          followRedirects: false,
        }
      : { kind: 'tcp', host: address, port };
  const out: Monitor[] = [];
  for (const name of service.hosts) {
    const h = hosts.find((x) => x.name === name);
    const address = h && directAddress(h);
    if (!address) continue;
    out.push({
      name: `${service.name}@${name}`,
      check: checkFor(address),
      service: service.name,
      host: name,
      target: 'direct',
      ...settings(set, ['server', 'agents', 'probes']),
    });
  }
  const pub = service.address?.[0];
  if (pub !== undefined) {
    out.push({
      name: service.name,
      check: checkFor(pub),
      service: service.name,
      target: 'public',
      ...settings(set, ['server', 'probes']),
    });
  }
  return out;
}
