/** Prometheus metrics of one server instance (its own registry, so two servers in one test process do not clash). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  readonly changes: Gauge<'state'>;
  readonly configReloads: Counter<'result'>;
  readonly authFailures: Counter<'reason'>;
  readonly plans: Gauge<'state'>;
  /** Issue 14, in blackbox_exporter's names so existing dashboards work: 1 when the last probe succeeded. */
  readonly probeSuccess: Gauge<'monitor' | 'vantage'>;
  readonly probeDuration: Gauge<'monitor' | 'vantage'>;
  /** 1 for the monitor's current state, 0 for the others. */
  readonly monitorState: Gauge<'monitor' | 'state'>;
  /** Probe results taken in, by vantage point (`server`, `agent:web1`, `probe:eu`) and result. */
  readonly probes: Counter<'vantage' | 'result'>;
  /** Incoming traffic (issue 14, §3): requests as agents measured them, the detector's expectation and verdict. */
  readonly incomingRequests: Counter<'service' | 'host' | 'source'>;
  readonly trafficExpected: Gauge<'service' | 'host'>;
  readonly trafficDrop: Gauge<'service' | 'host'>;
  /** Incident figures (issue 16 §6) over the last 90 days, refreshed on scrape: counts, MTTD/MTTA/MTTR quantiles. */
  readonly incidents: Gauge<'severity'>;
  readonly incidentsByService: Gauge<'service'>;
  readonly incidentsOpen: Gauge;
  readonly incidentMttd: Gauge<'quantile'>;
  readonly incidentMtta: Gauge<'quantile'>;
  readonly incidentMttr: Gauge<'quantile'>;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rampart_' });
  return {
    registry,
    requests: new Counter({
      name: 'rampart_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'rampart_http_request_duration_seconds',
      help: 'HTTP request duration by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    changes: new Gauge({
      name: 'rampart_changes',
      help: 'Changes by state (refreshed on scrape)',
      labelNames: ['state'],
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'rampart_config_reloads_total',
      help: 'Configuration reloads by result (ok, refused)',
      labelNames: ['result'],
      registers: [registry],
    }),
    plans: new Gauge({
      name: 'rampart_plans',
      help: 'Plans queued and running on the plan threads (refreshed on scrape)',
      labelNames: ['state'],
      registers: [registry],
    }),
    probeSuccess: new Gauge({
      name: 'probe_success',
      help: 'Whether the last probe of a monitor from a vantage point succeeded (1) or not (0)',
      labelNames: ['monitor', 'vantage'],
      registers: [registry],
    }),
    probeDuration: new Gauge({
      name: 'probe_duration_seconds',
      help: 'How long the last probe of a monitor from a vantage point took',
      labelNames: ['monitor', 'vantage'],
      registers: [registry],
    }),
    monitorState: new Gauge({
      name: 'rampart_monitor_state',
      help: "A monitor's state by quorum over its vantage points (1 for the current state)",
      labelNames: ['monitor', 'state'],
      registers: [registry],
    }),
    probes: new Counter({
      name: 'rampart_probe_results_total',
      help: 'Probe results taken in, by vantage point (server, agent:HOST, probe:NAME) and result (success, failure)',
      labelNames: ['vantage', 'result'],
      registers: [registry],
    }),
    incomingRequests: new Counter({
      name: 'rampart_incoming_requests_total',
      help: "Requests that reached a service's host, as its agent measured them, by service, host and source (access-log, haproxy, counters: new connections)",
      labelNames: ['service', 'host', 'source'],
      registers: [registry],
    }),
    trafficExpected: new Gauge({
      name: 'rampart_traffic_expected_requests_per_second',
      help: "The traffic-drop detector's expected request rate for a service on a host now",
      labelNames: ['service', 'host'],
      registers: [registry],
    }),
    trafficDrop: new Gauge({
      name: 'rampart_traffic_drop',
      help: "1 while the traffic-drop detector says a service's requests on a host dropped, else 0",
      labelNames: ['service', 'host'],
      registers: [registry],
    }),
    incidents: new Gauge({
      name: 'rampart_incidents_total',
      help: 'Incidents started in the last 90 days, by severity (refreshed on scrape)',
      labelNames: ['severity'],
      registers: [registry],
    }),
    incidentsByService: new Gauge({
      name: 'rampart_incidents_by_service',
      help: 'Incidents started in the last 90 days, by affected service (refreshed on scrape)',
      labelNames: ['service'],
      registers: [registry],
    }),
    incidentsOpen: new Gauge({
      name: 'rampart_incidents_open',
      help: 'Incidents not resolved yet (started in the last 90 days; refreshed on scrape)',
      registers: [registry],
    }),
    incidentMttd: new Gauge({
      name: 'rampart_incident_mttd_seconds',
      help: 'Time to detect (start to detection) of the last 90 days of incidents: median and 90th percentile',
      labelNames: ['quantile'],
      registers: [registry],
    }),
    incidentMtta: new Gauge({
      name: 'rampart_incident_mtta_seconds',
      help: 'Time to acknowledge (detection to acknowledgement) of the last 90 days of incidents: median and 90th percentile',
      labelNames: ['quantile'],
      registers: [registry],
    }),
    incidentMttr: new Gauge({
      name: 'rampart_incident_mttr_seconds',
      help: 'Time to resolve (start to resolution) of the last 90 days of incidents: median and 90th percentile',
      labelNames: ['quantile'],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'rampart_auth_failures_total',
      help: 'Failed authentications by reason (missing, malformed, unknown, revoked, expired, rate-limited)',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
