/**
 * What Rampart's own events become as alerts (issue 15 §1), pure: the monitoring events of docs/monitoring.md
 * ("Events") turned into alerts fired or resolved, with labels that route and group well (alertname, severity,
 * service, host, monitor) and annotations a person reads (summary, description, diagnosis).
 */
import type { AlertInput } from './alert.js';
import { type DeliveryFailure, notificationFailedAlert } from './outbox.js';

export interface AlertChange {
  readonly op: 'fire' | 'resolve';
  readonly alert: AlertInput;
  readonly atMs: number;
}

export interface SourceEvent {
  readonly id?: number;
  readonly at: string;
  readonly kind: string;
  readonly data: unknown;
}

type Data = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The alert names Rampart raises, with their severity. */
export const RAMPART_ALERTS = {
  MonitorDown: 'critical',
  MonitorDegraded: 'warning',
  ServiceDown: 'critical',
  RedundancyDegraded: 'warning',
  TrafficDrop: 'critical',
  FirewallDrift: 'critical',
  ChangeRolledBack: 'critical',
  ChangeEmergency: 'warning',
  ChangeOverride: 'warning',
  AgentSilent: 'warning',
  ProbeSilent: 'warning',
  TlsCertificateExpiring: 'warning',
} as const;

function change(
  op: AlertChange['op'],
  alertname: keyof typeof RAMPART_ALERTS,
  labels: Record<string, string | undefined>,
  annotations: Record<string, string | undefined>,
  e: SourceEvent,
  severity: string = RAMPART_ALERTS[alertname],
): AlertChange {
  return {
    op,
    atMs: Date.parse(e.at),
    alert: {
      labels: { alertname, severity, ...labels },
      annotations,
      source: e.kind,
    },
  };
}

function diagnosisText(d: unknown): string | undefined {
  if (!d || typeof d !== 'object') return undefined;
  const x = d as Data;
  return str(x.summary) ?? str(x.cause);
}

export function alertsFromEvent(e: SourceEvent): AlertChange[] {
  const d = (e.data ?? {}) as Data;
  switch (e.kind) {
    case 'monitor.state': {
      const monitor = str(d.monitor);
      if (!monitor) return [];
      const labels = { monitor, service: str(d.service), host: str(d.host) };
      const to = str(d.to);
      const down = Array.isArray(d.down) ? (d.down as unknown[]).filter((v) => typeof v === 'string') : [];
      const from = down.length > 0 ? ` from ${down.join(', ')}` : '';
      const ann = {
        summary: `${monitor} is ${to}${from}`,
        description: str(d.reason),
        diagnosis: diagnosisText(d.diagnosis),
        vantage: down.length > 0 ? down.join(', ') : undefined,
      };
      if (to === 'DOWN')
        return [change('fire', 'MonitorDown', labels, ann, e), change('resolve', 'MonitorDegraded', labels, {}, e)];
      if (to === 'DEGRADED')
        return [change('fire', 'MonitorDegraded', labels, ann, e), change('resolve', 'MonitorDown', labels, {}, e)];
      if (to === 'UP')
        return [change('resolve', 'MonitorDown', labels, {}, e), change('resolve', 'MonitorDegraded', labels, {}, e)];
      return [];
    }
    case 'monitor.diagnosis': {
      // A new diagnosis of a failing monitor updates the annotations of its firing alert.
      const monitor = str(d.monitor);
      const state = str(d.state);
      if (!monitor || (state !== 'DOWN' && state !== 'DEGRADED')) return [];
      const name = state === 'DOWN' ? 'MonitorDown' : 'MonitorDegraded';
      return [
        change(
          'fire',
          name,
          { monitor, service: str(d.service), host: str(d.host) },
          { summary: `${monitor} is ${state}`, diagnosis: diagnosisText(d.diagnosis) },
          e,
        ),
      ];
    }
    case 'service.state': {
      const service = str(d.service);
      if (!service) return [];
      const to = str(d.to);
      const labels = { service };
      const healthy = typeof d.healthy === 'number' ? d.healthy : undefined;
      const backends = typeof d.backends === 'number' ? d.backends : undefined;
      const ann = {
        summary:
          to === 'DEGRADED' && healthy !== undefined && backends !== undefined
            ? `${service} runs with ${healthy} of ${backends} backends`
            : `${service} is ${to}`,
        description: str(d.reason),
      };
      if (to === 'DOWN')
        return [change('fire', 'ServiceDown', labels, ann, e), change('resolve', 'RedundancyDegraded', labels, {}, e)];
      // DEGRADED with every backend healthy is the public address unreachable from some vantage points, not a
      // redundancy group below its size: the public monitor's MonitorDegraded says that one.
      if (to === 'DEGRADED' && healthy !== undefined && backends !== undefined && healthy >= backends)
        return [
          change('resolve', 'RedundancyDegraded', labels, {}, e),
          change('resolve', 'ServiceDown', labels, {}, e),
        ];
      if (to === 'DEGRADED')
        return [change('fire', 'RedundancyDegraded', labels, ann, e), change('resolve', 'ServiceDown', labels, {}, e)];
      if (to === 'UP')
        return [
          change('resolve', 'ServiceDown', labels, {}, e),
          change('resolve', 'RedundancyDegraded', labels, {}, e),
        ];
      return [];
    }
    case 'traffic.drop':
    case 'traffic.recovered': {
      const service = str(d.service);
      if (!service) return [];
      const labels = { service, host: str(d.host), source: str(d.source) };
      if (e.kind === 'traffic.recovered') return [change('resolve', 'TrafficDrop', labels, {}, e)];
      const share = typeof d.dropShare === 'number' ? `${Math.round(d.dropShare * 100)}%` : undefined;
      return [
        change(
          'fire',
          'TrafficDrop',
          labels,
          {
            summary: `incoming traffic to ${service}${labels.host ? ` on ${labels.host}` : ''} fell${share ? ` ${share}` : ''}`,
            description: str(d.description),
            since: str(d.since),
          },
          e,
        ),
      ];
    }
    case 'host.drift':
    case 'host.in-sync': {
      // The live ruleset left the desired one (an out-of-band edit, a rollback the server did not order): critical,
      // as in the founding outage, where a hand edit blocked all incoming traffic.
      const host = str(d.host);
      if (!host) return [];
      if (e.kind === 'host.in-sync') return [change('resolve', 'FirewallDrift', { host }, {}, e)];
      const revision = typeof d.desiredRevision === 'number' ? String(d.desiredRevision) : undefined;
      const flows = Array.isArray(d.flows) ? (d.flows as unknown[]).filter((v) => typeof v === 'string') : [];
      return [
        change(
          'fire',
          'FirewallDrift',
          { host },
          {
            summary: `${host}'s live ruleset differs from the desired one${str(d.summary) ? `: ${str(d.summary)}` : ''}`,
            description: flows.length > 0 ? flows.join('; ') : undefined,
            desired_revision: revision,
          },
          e,
        ),
      ];
    }
    case 'agent.rollback': {
      // Fires once per change and host. The change is final when its agent rolls back (rolled-back or failed), so
      // nothing later says it is over: a person resolves it by hand once they know why the health check failed.
      const host = str(d.host);
      const id = typeof d.change === 'number' ? String(d.change) : str(d.change);
      if (!host || !id) return [];
      const failed = str(d.outcome) === 'rollback-failed';
      return [
        change(
          'fire',
          'ChangeRolledBack',
          { change: id, host },
          {
            summary: failed
              ? `change ${id}: ${host}'s agent could not roll back after a failed health check`
              : `change ${id} was rolled back on ${host} by its agent`,
            description: str(d.detail),
          },
          e,
        ),
      ];
    }
    case 'change.emergency':
    case 'change.override': {
      // The safety net was bypassed (a freeze, or a blocked plan): people should know, so it pages at warning and
      // stays until someone resolves it by hand.
      const id = typeof d.change === 'number' ? String(d.change) : str(d.change);
      if (!id) return [];
      const emergency = e.kind === 'change.emergency';
      const by = str(d.by);
      const hosts = Array.isArray(d.hosts) ? (d.hosts as unknown[]).filter((v) => typeof v === 'string') : [];
      return [
        change(
          'fire',
          emergency ? 'ChangeEmergency' : 'ChangeOverride',
          { change: id },
          {
            summary: emergency
              ? `change ${id} is applied as an emergency${str(d.freeze) ? ` in freeze ${str(d.freeze)}` : ''}${by ? ` by ${by}` : ''}`
              : `change ${id} is applied with its blocked plan overridden${by ? ` by ${by}` : ''}`,
            description: str(d.reason),
            hosts: hosts.length > 0 ? hosts.join(', ') : undefined,
            blockers: str(d.blockers),
          },
          e,
        ),
      ];
    }
    case 'vantage.silent':
    case 'vantage.back': {
      // An agent or a probe that stopped reporting: the monitors it stood for are blind from there.
      const vantage = str(d.vantage);
      const m = vantage ? /^(agent|probe):(.+)$/.exec(vantage) : null;
      if (!m) return [];
      const agent = m[1] === 'agent';
      const name = m[2] as string;
      const alertname = agent ? 'AgentSilent' : 'ProbeSilent';
      const labels = agent ? { host: name } : { probe: name };
      if (e.kind === 'vantage.back') return [change('resolve', alertname, labels, {}, e)];
      const last = str(d.lastSeen);
      const interval = typeof d.intervalMs === 'number' ? `${Math.round(d.intervalMs / 1000)} s` : undefined;
      return [
        change(
          'fire',
          alertname,
          labels,
          {
            summary: `${agent ? `the agent of ${name}` : `probe ${name}`} has been silent${typeof d.intervals === 'number' && interval ? ` for more than ${d.intervals} intervals of ${interval}` : ''}`,
            description: last ? `last heard from at ${last}` : undefined,
            vantage,
          },
          e,
        ),
      ];
    }
    case 'tls.expiring':
    case 'tls.renewed': {
      // Two severities, two alerts (severity is a label): the one of the other level resolves, as DOWN/DEGRADED do.
      const monitor = str(d.monitor);
      if (!monitor) return [];
      const labels = { monitor, service: str(d.service), host: str(d.host) };
      const level = str(d.level);
      const resolveOther = (sev: string) => change('resolve', 'TlsCertificateExpiring', labels, {}, e, sev);
      if (e.kind === 'tls.renewed') return [resolveOther('warning'), resolveOther('critical')];
      if (level !== 'warning' && level !== 'critical') return [];
      const days = typeof d.daysLeft === 'number' ? d.daysLeft : undefined;
      const left = days === undefined ? 'soon' : days < 0 ? 'has expired' : `in ${days} day${days === 1 ? '' : 's'}`;
      return [
        change(
          'fire',
          'TlsCertificateExpiring',
          labels,
          {
            summary: `the TLS certificate of ${monitor} ${days !== undefined && days < 0 ? left : `expires ${left}`}${str(d.notAfter) ? ` (${str(d.notAfter)})` : ''}`,
            description: str(d.subject) ? `subject ${str(d.subject)}, issuer ${str(d.issuer) ?? 'unknown'}` : undefined,
          },
          e,
          level,
        ),
        resolveOther(level === 'warning' ? 'critical' : 'warning'),
      ];
    }
    case 'notification.failed': {
      // A receiver that failed past its deadline: paged on the other receivers (the flush keeps it from its own).
      const f = d as unknown as DeliveryFailure;
      if (typeof f.receiver !== 'string' || typeof f.channel !== 'string') return [];
      const a = notificationFailedAlert(f);
      return [{ op: 'fire', atMs: Date.parse(e.at), alert: { ...a, source: e.kind } }];
    }
    default:
      return [];
  }
}
