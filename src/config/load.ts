/**
 * Loads `rampart.yaml` (docs/config.md): YAML in, a validated RampartConfig out, or one ParseError listing every
 * problem with its file:line:column, field path, value and what would be valid. Never half a config.
 *
 * Three passes: YAML syntax (the `yaml` package, with positions), the shape of each top-level section (one zod
 * schema per section, so the server's sections of issue 5 slot in as new entries of SECTIONS), then the checks that
 * span fields (duplicate names, unknown hosts and groups, unknown audit rule ids, disabled rules without a written
 * justification, tables in the syntax of the host's firewall, canary hosts, approvals against approvers, freeze
 * windows that end after they start). Pure: the caller reads the file.
 */
import ipaddr from 'ipaddr.js';
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { AUDIT_RULES } from '../analysis/audit/catalogue.js';
import { SEVERITIES, type Severity } from '../analysis/audit/types.js';
import { type Intent, parseIntentEntry } from '../analysis/intents.js';
import { BLOCKER_KINDS, type BlockerKind } from '../change/types.js';
import { ParseError, UserError } from '../errors.js';
import type { Monitor } from '../monitor/types.js';
import { AlertingSchema, alertingOf } from './alerting.js';
import { didYouMean } from './did-you-mean.js';
import { environmentField } from './environment.js';
import { IncidentsSchema, incidentsOf, SiteSchema } from './incidents.js';
import { checkOf, MonitorsSchema, monitorOf, ServiceMonitorSchema, serviceMonitors } from './monitors.js';
import { type RunbookRef, runbookField, runbooksOf } from './runbooks.js';
import {
  checked,
  DAYS_SHOWN,
  dayOf,
  durationField,
  expect,
  formatDuration,
  intField,
  KNOWN,
  nameField,
  object,
  timeOfDay,
  valid,
} from './schema-kit.js';
import { StatusPageSchema, statusPageOf } from './status-page.js';
import { TrafficSchema, trafficOf } from './traffic.js';
import type {
  AuditConfig,
  AuditRuleSetting,
  ChangePolicy,
  ConfigLocation,
  FirewallKind,
  FreezeWindow,
  HealthCheck,
  HostConfig,
  PortDecl,
  RampartConfig,
  ServiceConfig,
} from './types.js';

/** One problem in a config file. */
export interface ConfigIssue {
  readonly line: number;
  readonly column: number;
  /** Field path, like `services[1].public[0]` ('' for the document itself). */
  readonly path: string;
  readonly token: string;
  readonly expected: string;
  /** The whole line: `file:line:column: path: problem; expected ...`. */
  readonly message: string;
}

/**
 * Every problem of a config file in one error: the ParseError fields are the first problem's (earliest in the
 * file), the message lists each problem on its own line, and `issues` (also in `details.issues`) has them as data.
 */
export class ConfigError extends ParseError {
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: readonly ConfigIssue[]) {
    const first = issues[0] ?? { line: 1, column: 1, token: '', expected: 'a valid config', message: '' };
    super(file, first.line, first.column, first.token, first.expected, 'invalid config');
    this.message = issues.map((i) => i.message).join('\n');
    this.issues = issues;
    Object.assign(this.details, { issues });
  }
}

export interface ParseConfigOptions {
  /** The audit rule ids `audit.rules` may configure (default: the ids of AUDIT_RULES). */
  readonly ruleIds?: readonly string[];
  /** How referenced files (runbooks) are read; default the file system. */
  readonly readFile?: (file: string) => string;
}

/** Defaults the audit applies when `audit:` leaves a setting out (documented in docs/config.md). */
export const AUDIT_DEFAULTS = {
  failOn: 'high',
  expiringWithinDays: 14,
  broadSourcePrefix: 8,
  establishedWithin: 10,
} as const satisfies Partial<Record<keyof AuditConfig, unknown>>;

/** The change policy of a site whose rampart.yaml has no `policy:` section (docs/config.md). */
export const DEFAULT_POLICY: ChangePolicy = Object.freeze({
  approvals: 1,
  approvers: Object.freeze([]) as readonly string[],
  freeze: Object.freeze([]) as readonly FreezeWindow[],
  canary: Object.freeze([]) as readonly string[],
  confirmTimeoutSeconds: 60,
  blockOn: BLOCKER_KINDS,
  planTimeoutSeconds: 60,
  planMemoryMiB: 2048,
});

/** What the agent manages on a host whose `tables` is not written (the loader keeps `tables` undefined then). */
export const DEFAULT_TABLES: Readonly<Record<FirewallKind, readonly string[]>> = {
  nftables: ['inet filter'],
  iptables: ['filter'],
};

/** The tables the agent manages on `host`: as written, else the default of its firewall (nftables when not set). */
export function managedTables(host: HostConfig): readonly string[] {
  return host.tables ?? DEFAULT_TABLES[host.firewall ?? 'nftables'];
}

/** Health check defaults (docs/config.md). */
export const HEALTH_DEFAULTS = { path: '/', expect: 200, timeoutMs: 2000 } as const;

// ---------------------------------------------------------------------------------------------------------------
// Values: ports, addresses, names. Each check returns the problem in words, or undefined when the value is good.

export const PORT_DECL_EXPECTED = 'tcp/PORT, udp/PORT or sctp/PORT (or PROTO/FROM-TO), PORT 1-65535';
const IP_EXPECTED = 'an IPv4 or IPv6 address without prefix, like 192.0.2.11 or 2001:db8::11';
const CIDR_EXPECTED = 'an address or network in CIDR notation, like 198.51.100.0/24 or 2001:db8::/32';

function portDeclOf(text: string): PortDecl | string {
  const m = /^(tcp|udp|sctp)\/(\d{1,6})(?:-(\d{1,6}))?$/.exec(text);
  if (!m) {
    if (/^\d+(-\d+)?$/.test(text)) return 'the protocol is missing';
    const proto = /^([A-Za-z0-9]+)\//.exec(text)?.[1];
    if (proto && !['tcp', 'udp', 'sctp'].includes(proto)) return `unknown protocol '${proto}'`;
    return 'not a port declaration';
  }
  const from = Number(m[2]);
  const to = m[3] === undefined ? from : Number(m[3]);
  for (const p of [from, to]) if (p < 1 || p > 65535) return `port ${p} is out of range`;
  if (from > to) return `the range ${from}-${to} is reversed (from > to)`;
  return { proto: m[1] as PortDecl['proto'], from, to, text };
}

/** Parses `tcp/443`, `udp/53`, `tcp/8000-8100` (the CLI's `--public` uses it too). */
export function parsePortDecl(text: string): PortDecl {
  const d = portDeclOf(text.trim());
  if (typeof d === 'string') {
    throw new UserError('RAMPART_ERR_USAGE', `'${text}': ${d}; expected ${PORT_DECL_EXPECTED}`, {
      value: text,
      why: d,
    });
  }
  return d;
}

/** A dotted quad or an IPv6 address without zone; ipaddr.js also takes legacy IPv4 forms ("10.1") we refuse. */
function addressProblem(text: string): string | undefined {
  if (text.includes(':')) {
    if (text.includes('%')) return 'zone ids are not allowed';
    return ipaddr.IPv6.isValid(text) ? undefined : 'not an IPv6 address';
  }
  return ipaddr.IPv4.isValidFourPartDecimal(text) ? undefined : 'not an IPv4 address';
}

function ipProblem(text: string): string | undefined {
  if (text.includes('/')) return 'a host address takes no prefix';
  return addressProblem(text);
}

function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return addressProblem(text);
  const addr = text.slice(0, slash);
  const bad = addressProblem(addr);
  if (bad) return bad;
  const lenText = text.slice(slash + 1);
  const bits = addr.includes(':') ? 128 : 32;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) return `the prefix length must be 0-${bits}`;
  const len = Number(lenText);
  // 198.51.100.7/24 is almost always a typo for the network or for the address: say which network it means.
  const v6 = addr.includes(':');
  const network = (v6 ? ipaddr.IPv6 : ipaddr.IPv4).networkAddressFromCIDR(`${addr}/${len}`).toString();
  if (network !== ipaddr.parse(addr).toString()) return `host bits are set (did you mean ${network}/${len}?)`;
  return undefined;
}

const NFT_FAMILIES = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'];
const IPT_TABLES = ['filter', 'nat', 'mangle', 'raw', 'security'];
const TABLE_EXPECTED: Record<FirewallKind, string> = {
  nftables: `an nftables table as FAMILY NAME, like inet filter (families: ${NFT_FAMILIES.join(', ')})`,
  iptables: `an iptables table: ${IPT_TABLES.join(', ')}`,
};
/** nft's identifier syntax (scanner.l): a letter or _, then letters, digits, /, \, -, _ and dots. */
const NFT_IDENT_RE = /^[A-Za-z_][A-Za-z0-9/\\_.-]*$/;

/** A managed table, normalised (`inet  filter` -> `inet filter`), or the problem in words. */
function tableOf(text: string, kind: FirewallKind): { table: string } | string {
  const words = text.trim().split(/\s+/);
  if (kind === 'iptables') {
    if (words.length !== 1) {
      return NFT_FAMILIES.includes(words[0] ?? '')
        ? 'an nftables table on an iptables host (iptables tables have no family)'
        : 'not an iptables table';
    }
    const t = words[0] ?? '';
    return IPT_TABLES.includes(t) ? { table: t } : `unknown iptables table${didYouMean(t, IPT_TABLES)}`;
  }
  if (words.length === 1) {
    return IPT_TABLES.includes(words[0] ?? '')
      ? 'the family is missing (an iptables table needs firewall: iptables on the host)'
      : 'the family is missing';
  }
  if (words.length !== 2) return 'not FAMILY NAME';
  const [family = '', name = ''] = words;
  if (!NFT_FAMILIES.includes(family)) return `unknown family '${family}'${didYouMean(family, NFT_FAMILIES)}`;
  if (!NFT_IDENT_RE.test(name) || name.length > 255) return `'${name}' is not an nftables table name`;
  return { table: `${family} ${name}` };
}

const INSTANT_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;

/** An ISO 8601 instant with an offset, normalised to UTC (`2020-11-27T00:00:00.000Z`), or the problem in words. */
function instantOf(text: string): { text: string; iso: string; ms: number } | string {
  const t = text.trim();
  const m = INSTANT_RE.exec(t);
  if (!m) {
    if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return 'a date alone is not an instant (add a time and an offset: T00:00:00Z)';
    if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t)) return 'the offset is missing (Z or +01:00)';
    return 'not an ISO 8601 instant';
  }
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12) return `month ${month} does not exist`;
  if (day < 1 || day > daysInMonth) return `day ${day} does not exist in ${year}-${m[2]}`;
  if (hour > 23 || minute > 59 || second > 59) return 'the time of day is out of range';
  if (m[7] !== 'Z' && (Number(m[8]) > 23 || Number(m[9]) > 59)) return 'the offset is out of range';
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) return 'not an ISO 8601 instant';
  return { text: t, iso: new Date(ms).toISOString(), ms };
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas: one per top-level section (the building blocks are in schema-kit.ts). Each zod message is the "expected" text; refinements carry the problem in
// params.problem. Unknown keys are reported with the known ones (for "did you mean").

const portField = checked(PORT_DECL_EXPECTED, portDeclOf);
const ipField = valid(IP_EXPECTED, ipProblem);
const cidrField = valid(CIDR_EXPECTED, cidrProblem);
const cidrList = z.array(cidrField, expect(`a list of networks: ${CIDR_EXPECTED}`));
const portList = z.array(portField, expect(`a list of ports: ${PORT_DECL_EXPECTED}`));
const SEVERITY_EXPECTED = `one of ${SEVERITIES.join(', ')}`;
const severityField = z.enum(SEVERITIES as [Severity, ...Severity[]], expect(SEVERITY_EXPECTED));
const TABLES_EXPECTED = `a list of tables: ${TABLE_EXPECTED.nftables}; or on iptables hosts ${TABLE_EXPECTED.iptables}`;

const HostSchema = object(
  {
    name: nameField('a host name'),
    addresses: z
      .array(ipField, expect(`a list of addresses: ${IP_EXPECTED}`))
      .min(1, expect(`at least one address: ${IP_EXPECTED}`)),
    firewall: z.enum(['nftables', 'iptables'], expect('nftables or iptables')).optional(),
    group: nameField('a group name').optional(),
    // Which syntax applies depends on `firewall`: checked with the other cross-field checks.
    tables: z
      .array(z.string(expect(TABLES_EXPECTED)), expect(TABLES_EXPECTED))
      .min(1, expect(`at least one table (leave tables out for the default); ${TABLES_EXPECTED}`))
      .optional(),
    environment: environmentField.optional(),
  },
  'a host: a map with name, addresses, and optionally firewall, group, tables and environment',
);

const HTTP_PATH_EXPECTED = 'a URL path starting with /, like /healthz';
const portNumber = intField(1, 65535, 'a port');
const healthTimeout = durationField(100, 60_000);

const HealthSchema = object(
  {
    http: object(
      {
        port: portNumber,
        path: z
          .string(expect(HTTP_PATH_EXPECTED))
          .regex(/^\/[\x21-\x7e]*$/, expect(HTTP_PATH_EXPECTED))
          .optional(),
        expect: intField(100, 599, 'an HTTP status').optional(),
        timeout: healthTimeout.optional(),
      },
      'an http check: a map with port, and optionally path, expect and timeout',
    ).optional(),
    tcp: object(
      { port: portNumber, timeout: healthTimeout.optional() },
      'a tcp check: a map with port and optionally timeout',
    ).optional(),
  },
  'a health check: {http: {port, path, expect, timeout}} or {tcp: {port, timeout}}',
);

const ServiceSchema = object(
  {
    name: nameField('a service name'),
    hosts: z.array(nameField('a host name'), expect('a list of host names')).optional(),
    group: nameField('a group name').optional(),
    public: portList.optional(),
    internal: z
      .array(
        object(
          {
            ports: portList.min(1, expect(`at least one port: ${PORT_DECL_EXPECTED}`)),
            from: cidrList.min(1, expect(`at least one network: ${CIDR_EXPECTED}`)),
          },
          'a map with ports and from',
        ),
        expect('a list of {ports, from} maps'),
      )
      .optional(),
    health: z.array(HealthSchema, expect('a list of health checks: {http: {...}} or {tcp: {...}}')).optional(),
    address: z
      .array(ipField, expect(`a list of public addresses: ${IP_EXPECTED}`))
      .min(1)
      .optional(),
    monitor: ServiceMonitorSchema.optional(),
    traffic: TrafficSchema.optional(),
    runbook: runbookField.optional(),
  },
  'a service: a map with name, hosts and/or group, public and internal ports, health checks, monitor, traffic and runbook',
);

const RuleSettingSchema = object(
  {
    enabled: z.boolean(expect('true or false')).optional(),
    severity: severityField.optional(),
    justification: z.string(expect('a justification (text)')).optional(),
  },
  'a map with enabled, severity and justification',
);

const AuditSchema = object(
  {
    'fail-on': severityField.optional(),
    'admin-ports': portList.optional(),
    'expiring-within-days': intField(0, 3650, 'days').optional(),
    'broad-source-prefix': intField(0, 128, 'a prefix length').optional(),
    'established-within': intField(1, 1_000_000, 'a rule count').optional(),
    rules: z.record(z.string(), RuleSettingSchema, expect('a map of audit rule id to settings')).optional(),
  },
  'a map with fail-on, admin-ports, expiring-within-days, broad-source-prefix, established-within and rules',
);

const INSTANT_EXPECTED = 'an ISO 8601 instant with an offset, like 2020-11-27T00:00:00Z or 2020-11-27T01:00:00+01:00';
const instantField = checked(INSTANT_EXPECTED, instantOf);
const DAY_EXPECTED = `a day: ${DAYS_SHOWN.join(', ')}`;
const TIME_EXPECTED = 'a time of day in UTC as HH:MM, like 09:00';

const FreezeSchema = object(
  {
    name: z
      .string(expect('a window name (text)'))
      .trim()
      .min(1, expect('a non-empty window name'))
      .max(200, expect('a window name of at most 200 characters')),
    start: instantField.optional(),
    end: instantField.optional(),
    weekly: object(
      {
        days: z
          .array(checked(DAY_EXPECTED, dayOf), expect(`a list of days: ${DAYS_SHOWN.join(', ')}`))
          .min(1, expect(`at least one day: ${DAYS_SHOWN.join(', ')}`)),
        from: checked(TIME_EXPECTED, (t) => timeOfDay(t, false)),
        to: checked(`${TIME_EXPECTED} (24:00 for the end of the day)`, (t) => timeOfDay(t, true)),
      },
      'a weekly window: a map with days, from and to',
    ).optional(),
  },
  'a freeze window: a map with name, and either start and end or weekly',
);

const PolicySchema = object(
  {
    approvals: intField(1, 1000, 'a number of approvals').optional(),
    approvers: z.array(nameField('a token name'), expect('a list of token names')).optional(),
    freeze: z.array(FreezeSchema, expect('a list of freeze windows')).optional(),
    canary: z.array(nameField('a host name'), expect('a list of host names')).optional(),
    'confirm-timeout': durationField(5000, 3_600_000).optional(),
    'block-on': z
      .array(
        z.enum(BLOCKER_KINDS as [BlockerKind, ...BlockerKind[]], expect(`one of ${BLOCKER_KINDS.join(', ')}`)),
        expect(`a list of plan dangers: ${BLOCKER_KINDS.join(', ')}`),
      )
      .optional(),
    'plan-timeout': durationField(1000, 3_600_000).optional(),
    'plan-memory': intField(64, 65_536, 'MiB of heap per plan').optional(),
  },
  'a map with approvals, approvers, freeze, canary, confirm-timeout, block-on, plan-timeout and plan-memory',
);

/**
 * The top-level sections, each with its schema (issue 5 added `policy`; its health checks and managed tables are
 * fields of services and hosts); `intents` is parsed by the intents entry parser (shared with intents files), so
 * only its list shape is here.
 */
const SECTIONS = {
  site: SiteSchema,
  hosts: z.array(HostSchema, expect('a list of hosts')),
  services: z.array(ServiceSchema, expect('a list of services')),
  'admin-networks': cidrList,
  intents: z.array(z.unknown(), expect('a list of intents')),
  audit: AuditSchema,
  policy: PolicySchema,
  monitors: MonitorsSchema,
  alerting: AlertingSchema,
  incidents: IncidentsSchema,
  'status-page': StatusPageSchema,
} as const;

type SectionKey = keyof typeof SECTIONS;
type Sections = { -readonly [K in SectionKey]?: z.output<(typeof SECTIONS)[K]> };
const SECTION_KEYS = Object.keys(SECTIONS) as SectionKey[];

// ---------------------------------------------------------------------------------------------------------------

type PathPart = string | number;

export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

const keyText = (key: unknown): string =>
  isScalar(key) ? String(key.value) : key === null || key === undefined ? '' : String(key);

/** Parses and validates rampart.yaml text. Throws a ConfigError (a ParseError) listing every problem. */
export function parseConfig(text: string, file: string, opts: ParseConfigOptions = {}): RampartConfig {
  const lineCounter = new LineCounter();
  // logLevel error: yaml would print warnings (collection keys) on stderr; problems are ours to report.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const issues: ConfigIssue[] = [];
  const fail = (): never => {
    const sorted = [...new Map(issues.map((i) => [i.message, i])).values()].sort(
      (a, b) => a.line - b.line || a.column - b.column,
    );
    throw new ConfigError(file, sorted);
  };
  const at = (offset: number | undefined) => lineCounter.linePos(offset ?? 0);
  const add = (line: number, column: number, path: string, token: string, problem: string, expected: string) => {
    const shown = token.replace(/\s+/g, ' ').trim();
    issues.push({
      line,
      column,
      path,
      token: shown,
      expected,
      message: `${file}:${line}:${column}: ${path === '' ? '' : `${path}: `}${problem}; expected ${expected}`,
    });
  };
  const addAt = (node: Node | undefined | null, path: readonly PathPart[], problem: string, expected: string) => {
    const p = at(node?.range?.[0]);
    add(p.line, p.col, formatPath(path), tokenOf(node), problem, expected);
  };

  for (const e of doc.errors) {
    const p = e.linePos?.[0] ?? at(e.pos[0]);
    add(p.line, p.col, '', '', `invalid YAML: ${e.message.split('\n')[0] ?? e.message}`, 'valid YAML');
  }
  if (issues.length > 0) fail();

  const root = doc.contents as Node | null;
  const rootIsEmpty = root === null || (isScalar(root) && root.value === null);
  if (!rootIsEmpty && !isMap(root)) {
    addAt(root, [], `unexpected ${describe(root)}`, `a map of sections: ${SECTION_KEYS.join(', ')}`);
    fail();
  }
  let js: Record<string, unknown> = {};
  if (isMap(root)) {
    try {
      js = doc.toJS({ maxAliasCount: 1000 }) as Record<string, unknown>;
    } catch (e) {
      // Alias bombs and the like: yaml refuses them while converting.
      addAt(
        root,
        [],
        `cannot be read: ${e instanceof Error ? e.message : String(e)}`,
        'a config without excessive aliases',
      );
      fail();
    }
  }

  // Section nodes, and unknown top-level keys.
  const nodes = new Map<SectionKey, Node | null>();
  if (isMap(root)) {
    for (const pair of root.items) {
      const key = keyText(pair.key);
      if ((SECTION_KEYS as string[]).includes(key)) nodes.set(key as SectionKey, pair.value as Node | null);
      else {
        addAt(
          pair.key as Node,
          [key],
          `unknown section '${key}'${didYouMean(key, SECTION_KEYS)}`,
          `one of ${SECTION_KEYS.join(', ')}`,
        );
      }
    }
  }

  // Shapes, one schema per section.
  const parsed: Sections = {};
  const invalid = new Set<SectionKey>();
  for (const key of SECTION_KEYS) {
    if (key === 'intents' || !nodes.has(key)) continue;
    const node = nodes.get(key) ?? null;
    // `hosts:` with every entry commented out is an empty section, not an error.
    if (node === null || (isScalar(node) && node.value === null)) continue;
    const r = SECTIONS[key].safeParse(js[key]);
    if (r.success) (parsed as Record<string, unknown>)[key] = r.data;
    else {
      invalid.add(key);
      for (const issue of r.error.issues) schemaIssue(doc, node, key, issue, addAt);
    }
  }

  // Intents: the same entry parser as intents files.
  const intents: Intent[] = [];
  const intentsNode = nodes.get('intents');
  if (intentsNode && !(isScalar(intentsNode) && intentsNode.value === null)) {
    if (!isSeq(intentsNode)) {
      addAt(intentsNode, ['intents'], `unexpected ${describe(intentsNode)}`, 'a list of intents');
    } else {
      const names = new Set<string>();
      intentsNode.items.forEach((item, index) => {
        try {
          intents.push(parseIntentEntry(item, index, { file, lineCounter, path: 'intents' }, names));
        } catch (e) {
          if (!(e instanceof ParseError)) throw e;
          issues.push({
            line: e.line,
            column: e.column,
            path: `intents[${index}]`,
            token: e.token,
            expected: e.expected,
            message: e.message,
          });
        }
      });
    }
  }

  // Checks across fields.
  const locOf = (n: Node | undefined): ConfigLocation => {
    const p = at(n?.range?.[0]);
    return { file, line: p.line, column: p.col };
  };
  const loc = (path: readonly PathPart[]): ConfigLocation => locOf(nodeAt(doc, root, path));
  const node = (path: readonly PathPart[]) => nodeAt(doc, root, path);
  // A host without `firewall` is taken as nftables for its tables (the default firewall, docs/config.md).
  const hostTables = (written: readonly string[], kind: FirewallKind, i: number): string[] => {
    const out: string[] = [];
    written.forEach((text, j) => {
      const path = ['hosts', i, 'tables', j];
      const t = tableOf(text, kind);
      if (typeof t === 'string') addAt(node(path), path, `'${text}': ${t}`, TABLE_EXPECTED[kind]);
      else if (out.includes(t.table)) addAt(node(path), path, `duplicate table '${t.table}'`, 'each table once');
      else out.push(t.table);
    });
    return out;
  };
  const hosts: HostConfig[] = [];
  const hostAt = new Map<string, number>();
  (parsed.hosts ?? []).forEach((h, i) => {
    const first = hostAt.get(h.name);
    if (first !== undefined) {
      addAt(
        node(['hosts', i, 'name']),
        ['hosts', i, 'name'],
        `duplicate host name '${h.name}' (first declared at line ${loc(['hosts', first]).line})`,
        'a unique host name',
      );
      return;
    }
    hostAt.set(h.name, i);
    const tables = h.tables === undefined ? undefined : hostTables(h.tables, h.firewall ?? 'nftables', i);
    hosts.push({
      name: h.name,
      addresses: h.addresses,
      ...(h.firewall ? { firewall: h.firewall } : {}),
      ...(h.group ? { group: h.group } : {}),
      ...(tables ? { tables } : {}),
      ...(h.environment ? { environment: h.environment } : {}),
      at: loc(['hosts', i]),
    });
  });
  // When the hosts section itself is broken, references to hosts cannot be judged: say nothing rather than guess.
  const hostsKnown = !invalid.has('hosts');
  const groups = [...new Set(hosts.flatMap((h) => (h.group ? [h.group] : [])))];

  const services: ServiceConfig[] = [];
  const serviceAt = new Map<string, number>();
  (parsed.services ?? []).forEach((s, i) => {
    const path = ['services', i];
    const first = serviceAt.get(s.name);
    if (first !== undefined) {
      addAt(
        node([...path, 'name']),
        [...path, 'name'],
        `duplicate service name '${s.name}' (first declared at line ${loc(['services', first]).line})`,
        'a unique service name',
      );
    } else serviceAt.set(s.name, i);
    if (s.hosts === undefined && s.group === undefined) {
      addAt(
        node(path),
        path,
        `service '${s.name}' names neither hosts nor group`,
        'hosts: [host names] and/or group: a host group',
      );
      return;
    }
    const resolved: string[] = [];
    s.hosts?.forEach((h, j) => {
      if (hostsKnown && !hostAt.has(h)) {
        const known = [...hostAt.keys()];
        addAt(
          node([...path, 'hosts', j]),
          [...path, 'hosts', j],
          `unknown host '${h}'${didYouMean(h, known)}`,
          known.length ? `one of the declared hosts: ${known.join(', ')}` : 'a host declared under hosts:',
        );
      } else if (!resolved.includes(h)) resolved.push(h);
    });
    if (s.group !== undefined) {
      if (hostsKnown && !groups.includes(s.group)) {
        addAt(
          node([...path, 'group']),
          [...path, 'group'],
          `no host is in group '${s.group}'${didYouMean(s.group, groups)}`,
          groups.length ? `one of the host groups: ${groups.join(', ')}` : 'a group set on some host (hosts[].group)',
        );
      }
      for (const h of hosts) if (h.group === s.group && !resolved.includes(h.name)) resolved.push(h.name);
    }
    if (hostsKnown && resolved.length === 0 && s.group === undefined && (s.hosts ?? []).length === 0) {
      addAt(
        node([...path, 'hosts']),
        [...path, 'hosts'],
        `service '${s.name}' runs on no host`,
        'at least one host name, or a group',
      );
    }
    const health: HealthCheck[] = [];
    s.health?.forEach((c, j) => {
      const hp = [...path, 'health', j];
      const at = loc(hp);
      if (c.http && !c.tcp) {
        health.push({
          kind: 'http',
          port: c.http.port,
          path: c.http.path ?? HEALTH_DEFAULTS.path,
          expect: c.http.expect ?? HEALTH_DEFAULTS.expect,
          timeoutMs: c.http.timeout ?? HEALTH_DEFAULTS.timeoutMs,
          at,
        });
      } else if (c.tcp && !c.http) {
        health.push({ kind: 'tcp', port: c.tcp.port, timeoutMs: c.tcp.timeout ?? HEALTH_DEFAULTS.timeoutMs, at });
      } else {
        addAt(
          node(hp),
          hp,
          c.http ? 'a health check with both http and tcp' : 'a health check with neither http nor tcp',
          'one check per entry: {http: {port, path, expect, timeout}} or {tcp: {port, timeout}}',
        );
      }
    });
    const lbHost = s.traffic?.haproxy?.host;
    if (lbHost !== undefined && hostsKnown && !hostAt.has(lbHost)) {
      const known = [...hostAt.keys()];
      const hp = [...path, 'traffic', 'haproxy', 'host'];
      addAt(
        node(hp),
        hp,
        `unknown host '${lbHost}'${didYouMean(lbHost, known)}`,
        'the declared host where HAProxy runs with a Rampart agent',
      );
    }
    services.push({
      name: s.name,
      hosts: resolved,
      ...(s.group !== undefined ? { group: s.group } : {}),
      public: s.public ?? [],
      ...(s.internal ? { internal: s.internal } : {}),
      ...(s.health ? { health } : {}),
      ...(s.address ? { address: s.address } : {}),
      ...(s.traffic ? { traffic: trafficOf(s.traffic, loc, [...path, 'traffic']) } : {}),
      ...(s.runbook !== undefined ? { runbook: s.runbook } : {}),
      at: loc(path),
    });
  });

  // Monitors: the section's entries, then those services' `monitor:` stand for.
  const monitors: Monitor[] = [];
  const monitorAt = new Map<string, string>();
  const addMonitor = (m: Monitor, path: readonly PathPart[]) => {
    const first = monitorAt.get(m.name);
    if (first !== undefined) {
      addAt(
        node([...path]),
        [...path],
        `duplicate monitor name '${m.name}' (first at ${first})`,
        'a unique monitor name',
      );
      return;
    }
    monitorAt.set(m.name, formatPath(path));
    monitors.push(m);
  };
  (parsed.monitors ?? []).forEach((e, i) => {
    const path = ['monitors', i];
    const kinds = (['http', 'tcp', 'tls', 'dns'] as const).filter((k) => e[k] !== undefined);
    const check = checkOf(e);
    if (kinds.length !== 1 || !check) {
      addAt(
        node(path),
        path,
        kinds.length === 0 ? `monitor '${e.name}' has no check` : `monitor '${e.name}' has ${kinds.join(' and ')}`,
        'exactly one of http, tcp, tls or dns',
      );
      return;
    }
    if (e.service !== undefined && !serviceAt.has(e.service)) {
      const known = [...serviceAt.keys()];
      addAt(
        node([...path, 'service']),
        [...path, 'service'],
        `unknown service '${e.service}'${didYouMean(e.service, known)}`,
        known.length ? `one of the declared services: ${known.join(', ')}` : 'a service declared under services:',
      );
      return;
    }
    if (e.timeout !== undefined && e.interval !== undefined && e.timeout > e.interval) {
      addAt(
        node([...path, 'timeout']),
        [...path, 'timeout'],
        'the timeout is longer than the interval',
        'a timeout up to the interval',
      );
      return;
    }
    addMonitor(monitorOf(e, check), [...path, 'name']);
  });
  (parsed.services ?? []).forEach((s, i) => {
    const svc = services.find((x) => x.name === s.name);
    if (!s.monitor || !svc) return;
    const path = ['services', i, 'monitor'];
    const made = serviceMonitors(svc, hosts, s.monitor);
    if (made.length === 0) {
      addAt(
        node(path),
        path,
        `service '${s.name}' has nothing to monitor`,
        'a health check (health:) or a public port (public:) on the service',
      );
    }
    for (const m of made) addMonitor(m, path);
  });

  const audit = buildAudit(parsed.audit, opts.ruleIds ?? AUDIT_RULES.map((r) => r.id), doc, root, locOf, addAt);
  const policy = buildPolicy(parsed.policy, hostsKnown ? [...hostAt.keys()] : undefined, doc, root, locOf, addAt);
  const alerting = alertingOf(
    parsed.alerting,
    (path, problem, expected) => addAt(node(path), path, problem, expected),
    loc,
  );
  // Runbooks: every reference read once (a missing file is an error where it is named).
  const runbookRefs: RunbookRef[] = [];
  (parsed.services ?? []).forEach((s, i) => {
    if (s.runbook !== undefined) runbookRefs.push({ path: ['services', i, 'runbook'], value: s.runbook });
  });
  type RouteRunbook = { runbook?: string | undefined; routes?: RouteRunbook[] | undefined };
  const routeRunbooks = (r: RouteRunbook, path: PathPart[]): void => {
    if (r.runbook !== undefined) runbookRefs.push({ path: [...path, 'runbook'], value: r.runbook });
    r.routes?.forEach((c, i) => {
      routeRunbooks(c, [...path, 'routes', i]);
    });
  };
  if (parsed.alerting?.route) routeRunbooks(parsed.alerting.route, ['alerting', 'route']);
  const runbooks = runbooksOf(
    runbookRefs,
    file,
    loc,
    (path, problem, expected) => addAt(node([...path]), path, problem, expected),
    opts.readFile,
  );

  const statusPage = statusPageOf(
    parsed['status-page'],
    invalid.has('services') ? undefined : services.map((s) => s.name),
    (path, problem, expected) => addAt(node(path), path, problem, expected),
  );

  if (issues.length > 0) fail();
  return {
    file,
    ...(parsed.site?.name !== undefined ? { site: parsed.site.name } : {}),
    ...(parsed.site?.timeZone !== undefined ? { timeZone: parsed.site.timeZone } : {}),
    ...(parsed.site?.environment !== undefined ? { environment: parsed.site.environment } : {}),
    hosts,
    services,
    adminNetworks: parsed['admin-networks'] ?? [],
    intents,
    audit,
    policy,
    monitors,
    alerting,
    incidents: incidentsOf(parsed.incidents, parsed.site?.timeZone),
    ...(runbooks.length > 0 ? { runbooks } : {}),
    ...(statusPage ? { statusPage } : {}),
  };
}

/** `policy:` with its defaults, after the checks across its fields and against the hosts (undefined: unknown). */
function buildPolicy(
  p: Sections['policy'],
  hostNames: readonly string[] | undefined,
  doc: Document,
  root: Node | null,
  loc: (node: Node | undefined) => ConfigLocation,
  addAt: AddAt,
): ChangePolicy {
  if (p === undefined) return DEFAULT_POLICY;
  const node = (path: readonly PathPart[]) => nodeAt(doc, root, path);
  const approvers: string[] = [];
  p.approvers?.forEach((name, i) => {
    if (approvers.includes(name)) {
      addAt(
        node(['policy', 'approvers', i]),
        ['policy', 'approvers', i],
        `duplicate approver '${name}'`,
        'each approver once',
      );
    } else approvers.push(name);
  });
  const approvals = p.approvals ?? DEFAULT_POLICY.approvals;
  if (approvers.length > 0 && approvals > approvers.length) {
    addAt(
      node(['policy', 'approvals']),
      ['policy', 'approvals'],
      `${approvals} approvals can never be reached with ${approvers.length} approver${approvers.length === 1 ? '' : 's'} (${approvers.join(', ')})`,
      `at most ${approvers.length} (the number of approvers), or more names under approvers`,
    );
  }

  const canary: string[] = [];
  p.canary?.forEach((name, i) => {
    const path = ['policy', 'canary', i];
    if (hostNames !== undefined && !hostNames.includes(name)) {
      addAt(
        node(path),
        path,
        `unknown host '${name}'${didYouMean(name, hostNames)}`,
        hostNames.length ? `one of the declared hosts: ${hostNames.join(', ')}` : 'a host declared under hosts:',
      );
    } else if (canary.includes(name)) addAt(node(path), path, `duplicate canary host '${name}'`, 'each host once');
    else canary.push(name);
  });

  const freeze: FreezeWindow[] = [];
  const names = new Map<string, number>();
  p.freeze?.forEach((w, i) => {
    const path = ['policy', 'freeze', i];
    const first = names.get(w.name);
    if (first !== undefined) {
      addAt(
        node([...path, 'name']),
        [...path, 'name'],
        `duplicate freeze window name '${w.name}' (first declared at line ${loc(node(['policy', 'freeze', first])).line})`,
        'a unique window name',
      );
      return;
    }
    names.set(w.name, i);
    const at = loc(node(path));
    const once = w.start !== undefined || w.end !== undefined;
    if (once && w.weekly) {
      addAt(
        node([...path, 'weekly']),
        [...path, 'weekly'],
        `freeze window '${w.name}' has both start/end and weekly`,
        'either start and end (once) or weekly, in separate windows',
      );
    } else if (w.weekly) {
      const { days, from, to } = w.weekly;
      if (from >= to) {
        addAt(
          node([...path, 'weekly', 'to']),
          [...path, 'weekly', 'to'],
          `'${hhmm(to)}' is not after from '${hhmm(from)}' (a weekly window cannot span midnight)`,
          'a time after from (24:00 for the end of the day); split a window over midnight into two windows',
        );
      } else
        freeze.push({ kind: 'weekly', name: w.name, days: [...new Set(days)].sort((a, b) => a - b), from, to, at });
    } else if (w.start === undefined || w.end === undefined) {
      const missing = w.start === undefined ? 'start' : 'end';
      addAt(
        node(path),
        [...path, ...(once ? [missing] : [])],
        once ? `missing '${missing}'` : `freeze window '${w.name}' has neither start/end nor weekly`,
        once ? INSTANT_EXPECTED : 'start and end (ISO 8601 instants), or weekly: {days, from, to}',
      );
    } else if (w.end.ms <= w.start.ms) {
      addAt(
        node([...path, 'end']),
        [...path, 'end'],
        `'${w.end.text}' is not after start '${w.start.text}'${[w.start.text, w.end.text].some((t) => !t.endsWith('Z')) ? ` (in UTC: ${w.end.iso} is not after ${w.start.iso})` : ''}`,
        'an end after the start (the end is exclusive)',
      );
    } else freeze.push({ kind: 'once', name: w.name, start: w.start.iso, end: w.end.iso, at });
  });

  const confirm = p['confirm-timeout'];
  if (confirm !== undefined && confirm % 1000 !== 0) {
    const path = ['policy', 'confirm-timeout'];
    addAt(
      node(path),
      path,
      `'${formatDuration(confirm)}': not a whole number of seconds`,
      'a duration in whole seconds, like 90s or 2m',
    );
  }
  const planTimeout = p['plan-timeout'];
  return {
    approvals,
    approvers,
    freeze,
    canary,
    confirmTimeoutSeconds: confirm === undefined ? DEFAULT_POLICY.confirmTimeoutSeconds : Math.round(confirm / 1000),
    blockOn: p['block-on'] ? [...new Set(p['block-on'])] : DEFAULT_POLICY.blockOn,
    planTimeoutSeconds: planTimeout === undefined ? DEFAULT_POLICY.planTimeoutSeconds : planTimeout / 1000,
    planMemoryMiB: p['plan-memory'] ?? DEFAULT_POLICY.planMemoryMiB,
  };
}

const hhmm = (minutes: number): string =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

type AddAt = (node: Node | undefined | null, path: readonly PathPart[], problem: string, expected: string) => void;

function buildAudit(
  a: Sections['audit'],
  ruleIds: readonly string[],
  doc: Document,
  root: Node | null,
  loc: (node: Node | undefined) => ConfigLocation,
  addAt: AddAt,
): AuditConfig {
  // A rule setting is located at its id (the key), which is what a reader looks for.
  const keyLoc = (path: readonly PathPart[]) => loc(keyNodeAt(doc, root, path));
  const rules: Record<string, AuditRuleSetting> = {};
  for (const [id, r] of Object.entries(a?.rules ?? {})) {
    const path = ['audit', 'rules', id];
    if (!ruleIds.includes(id)) {
      const expected =
        ruleIds.length === 0
          ? 'an audit rule id (none are registered)'
          : `an audit rule id: ${[...ruleIds].sort().join(', ')}`;
      addAt(keyNodeAt(doc, root, path), path, `unknown audit rule '${id}'${didYouMean(id, ruleIds)}`, expected);
      continue;
    }
    const enabled = r.enabled ?? true;
    if (!enabled && (r.justification ?? '').trim() === '') {
      const justification = r.justification === undefined ? undefined : nodeAt(doc, root, [...path, 'justification']);
      addAt(
        justification ?? nodeAt(doc, root, [...path, 'enabled']),
        [...path, 'justification'],
        r.justification === undefined ? `rule '${id}' is disabled without a justification` : 'empty justification',
        'a written justification when enabled is false (it is shown in every report)',
      );
      continue;
    }
    rules[id] = {
      enabled,
      ...(r.severity ? { severity: r.severity } : {}),
      ...(r.justification !== undefined ? { justification: r.justification.trim() } : {}),
      at: keyLoc(path),
    };
  }
  return {
    ...(a?.['fail-on'] ? { failOn: a['fail-on'] } : {}),
    ...(a?.['admin-ports'] ? { adminPorts: a['admin-ports'] } : {}),
    ...(a?.['expiring-within-days'] !== undefined ? { expiringWithinDays: a['expiring-within-days'] } : {}),
    ...(a?.['broad-source-prefix'] !== undefined ? { broadSourcePrefix: a['broad-source-prefix'] } : {}),
    ...(a?.['established-within'] !== undefined ? { establishedWithin: a['established-within'] } : {}),
    rules,
  };
}

/** Turns one zod issue of a section into a located problem. */
function schemaIssue(doc: Document, sectionNode: Node | null, section: string, issue: z.core.$ZodIssue, addAt: AddAt) {
  const rel = issue.path.filter((p): p is PathPart => typeof p !== 'symbol');
  const path = [section, ...rel];
  // The deepest node that exists: a missing key is reported at the map that lacks it.
  const { node, at, depth } = locate(doc, sectionNode, rel);
  if (issue.code === 'unrecognized_keys') {
    const known = issue.message.startsWith(KNOWN) ? issue.message.slice(KNOWN.length).split(' ') : [];
    for (const key of issue.keys) {
      const keyNode = keyNodeOf(doc, node, key);
      addAt(
        keyNode ?? node,
        [...path, key],
        `unknown key '${key}'${didYouMean(key, known)}`,
        `one of ${known.join(', ')}`,
      );
    }
    return;
  }
  const expected = issue.message;
  if (depth < rel.length) {
    addAt(at, path, `missing '${String(rel[depth])}'`, expected);
    return;
  }
  const problem =
    issue.code === 'custom' && typeof issue.params?.problem === 'string'
      ? `${describe(node)}: ${issue.params.problem}`
      : `unexpected ${describe(node)}`;
  addAt(at, path, problem, expected);
}

interface Located {
  /** The deepest node found (aliases resolved). */
  readonly node: Node | undefined;
  /** Where to point: that node, or the alias that led to it (the anchor may be far away). */
  readonly at: Node | undefined;
  /** How many parts of the path were found. */
  readonly depth: number;
}

function locate(doc: Document, start: Node | null | undefined, path: readonly PathPart[]): Located {
  let node = start ?? undefined;
  let alias: Node | undefined;
  let depth = 0;
  for (const part of path) {
    const next = child(doc, node, part);
    if (next === undefined) break;
    if (alias === undefined && isAlias(next)) alias = next;
    node = next;
    depth++;
  }
  return { node: resolve(doc, node) ?? undefined, at: alias ?? node, depth };
}

/** The node to point at for a path (the deepest that exists). */
function nodeAt(doc: Document, root: Node | null, path: readonly PathPart[]): Node | undefined {
  return locate(doc, root, path).at;
}

function keyNodeAt(doc: Document, root: Node | null, path: readonly PathPart[]): Node | undefined {
  const last = path[path.length - 1];
  if (typeof last !== 'string') return nodeAt(doc, root, path);
  return keyNodeOf(doc, nodeAt(doc, root, path.slice(0, -1)), last);
}

function resolve(doc: Document, node: Node | null | undefined): Node | null | undefined {
  let n = node;
  for (let hops = 0; isAlias(n) && hops < 100; hops++) n = n.resolve(doc) as Node | undefined;
  return n;
}

/** The child node (an alias is returned as is; the parent is resolved first). */
function child(doc: Document, parent: Node | null | undefined, part: PathPart): Node | undefined {
  const p = resolve(doc, parent);
  if (typeof part === 'number' && isSeq(p)) return (p.items[part] as Node | null | undefined) ?? undefined;
  if (isMap(p)) {
    const pair = p.items.find((it) => keyText(it.key) === String(part));
    if (!pair) return undefined;
    return (pair.value as Node | null) ?? (pair.key as Node | null) ?? undefined;
  }
  return undefined;
}

function keyNodeOf(doc: Document, parent: Node | null | undefined, key: string): Node | undefined {
  const p = resolve(doc, parent);
  if (!isMap(p)) return undefined;
  const pair = p.items.find((it) => keyText(it.key) === key);
  return (pair?.key as Node | undefined) ?? undefined;
}

function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isScalar(node)) return node.value === null ? 'nothing' : `'${shorten(scalarText(node))}'`;
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return node.items.length === 0 ? 'an empty list' : 'a list';
  if (isAlias(node)) return `'*${node.source}'`;
  return 'a value';
}

function tokenOf(node: Node | null | undefined): string {
  if (node === null || node === undefined) return '';
  if (isScalar(node)) return node.value === null ? '' : scalarText(node);
  return describe(node);
}

function scalarText(node: { value: unknown; source?: string; type?: string | undefined }): string {
  const s = typeof node.source === 'string' && node.source !== '' ? node.source : String(node.value);
  const text = s.replace(/\s+/g, ' ').trim();
  // "10" is text where a number is expected: keep the quotes so the message shows why it is refused.
  return node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? `"${text}"` : text;
}

const shorten = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s);

export { formatDuration };
