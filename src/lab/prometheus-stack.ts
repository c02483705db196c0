/**
 * Prometheus + blackbox_exporter + Alertmanager inside a shop lab's namespace (issue 18 §3, issue 15 §6): the stack
 * most teams would otherwise use, configured the way its documentation suggests (blackbox_exporter's http_2xx module
 * probing URLs, an alert on `probe_success == 0`, Alertmanager posting to a webhook), from Debian's packages
 * (`prometheus`, `prometheus-blackbox-exporter`, `prometheus-alertmanager`; nothing is downloaded). Used by `rampart
 * drill run --compare prometheus` (src/lab/drills/runner.ts) and bench/prometheus-anchor-bench.mjs.
 *
 * Every process is started with lab.spawnIn (so the lab stops exactly those) and listens on the namespace's
 * loopback only; each stack gets fresh data directories, so each start is a first outage of the day for it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ShopLab, type SpawnedProcess, shopLabUnavailable } from './shop-lab.js';

/** The Debian packages' commands. */
export const PROMETHEUS_TOOLS = ['prometheus', 'prometheus-alertmanager', 'prometheus-blackbox-exporter'] as const;
export const PROMETHEUS_PACKAGES = 'prometheus prometheus-alertmanager prometheus-blackbox-exporter';

/** Why the stack cannot run here (a command missing, not root), or undefined. */
export function prometheusUnavailable(): string | undefined {
  const why = shopLabUnavailable([...PROMETHEUS_TOOLS]);
  return why ? `${why} (Debian packages: ${PROMETHEUS_PACKAGES})` : undefined;
}

/** One Prometheus + Alertmanager pair's settings (durations as Prometheus writes them: 15s, 1m). */
export interface PrometheusStackSettings {
  /** Also the webhook path's last part and the process labels. */
  readonly name: string;
  /** Ports on the namespace's loopback. */
  readonly promPort: number;
  readonly amPort: number;
  readonly scrapeInterval: string;
  /** blackbox_exporter probes with this minus its 0.5 s offset. */
  readonly scrapeTimeout: string;
  readonly evaluationInterval: string;
  /** The alert rule's `for:`. */
  readonly for: string;
  readonly groupWait: string;
  readonly groupInterval: string;
  readonly groupBy: readonly string[];
}

/**
 * What Debian ships (/etc/prometheus/prometheus.yml, alertmanager.yml) and the most common published blackbox rule:
 * scrape and evaluation every 15 s (Prometheus's own built-in default is 1 m), timeout 10 s, `for: 1m`, group_wait
 * 30 s, group_interval 5 m, group_by [alertname, cluster, service].
 */
export const PROMETHEUS_DEFAULTS: PrometheusStackSettings = {
  name: 'default',
  promPort: 9090,
  amPort: 9093,
  scrapeInterval: '15s',
  scrapeTimeout: '10s',
  evaluationInterval: '15s',
  for: '1m',
  groupWait: '30s',
  groupInterval: '5m',
  groupBy: ['alertname', 'cluster', 'service'],
};

/**
 * Tuned to a 5 s scrape (issue 18 §3): scrape and evaluation every 5 s, the probe's timeout 0.5 s like Rampart's
 * lab monitors (scrape_timeout 1 s), `for: 5s` (two failing evaluations, like Rampart's 2 failures), group_wait 1 s
 * (what the drills give Rampart's own route).
 */
export const PROMETHEUS_TUNED: PrometheusStackSettings = {
  name: 'tuned',
  promPort: 9091,
  amPort: 9094,
  scrapeInterval: '5s',
  scrapeTimeout: '1s',
  evaluationInterval: '5s',
  for: '5s',
  groupWait: '1s',
  groupInterval: '5m',
  groupBy: ['alertname', 'cluster', 'service'],
};

export const BLACKBOX_PORT = 9115;

export interface PrometheusStackTargets {
  /** URLs probed by blackbox_exporter's http_2xx module (the shop's public URL and each backend's). */
  readonly urls: readonly string[];
  /** Where Alertmanager posts (its webhook_configs url). */
  readonly webhookUrl: string;
  /** The alert's name (default ShopDown) and extra labels (default service: shop). */
  readonly alertname?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** blackbox_exporter's address (default 127.0.0.1:9115). */
  readonly blackbox?: string;
}

/** The three files of one stack (pure): the rule, prometheus.yml, alertmanager.yml. */
export function prometheusStackFiles(
  s: PrometheusStackSettings,
  t: PrometheusStackTargets,
  rulesPath: string,
): { readonly rules: string; readonly prometheus: string; readonly alertmanager: string } {
  const labels = { severity: 'critical', ...(t.labels ?? { service: 'shop' }) };
  const q = (x: string) => JSON.stringify(x);
  return {
    rules: `groups:
  - name: shop
    rules:
      - alert: ${t.alertname ?? 'ShopDown'}
        expr: probe_success == 0
        for: ${s.for}
        labels: {${Object.entries(labels)
          .map(([k, v]) => `${k}: ${q(v)}`)
          .join(', ')}}
        annotations: {summary: 'the probe of {{ $labels.instance }} fails'}
`,
    prometheus: `global: {scrape_interval: ${s.scrapeInterval}, scrape_timeout: ${s.scrapeTimeout}, evaluation_interval: ${s.evaluationInterval}}
alerting:
  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:${s.amPort}']}]}]
rule_files: [${q(rulesPath)}]
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs: [{targets: [${t.urls.map(q).join(', ')}]}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: '${t.blackbox ?? `127.0.0.1:${BLACKBOX_PORT}`}'}
`,
    alertmanager: `route:
  group_by: [${s.groupBy.map(q).join(', ')}]
  group_wait: ${s.groupWait}
  group_interval: ${s.groupInterval}
  repeat_interval: 3h
  receiver: hook
receivers:
  - name: hook
    webhook_configs: [{url: ${q(t.webhookUrl)}}]
`,
  };
}

/** blackbox_exporter with Debian's module file (http_2xx), on the namespace's loopback. */
export function startBlackbox(lab: ShopLab, where = 'srv', port = BLACKBOX_PORT): SpawnedProcess {
  return lab.spawnIn(
    where,
    [
      'prometheus-blackbox-exporter',
      '--config.file=/etc/prometheus/blackbox.yml',
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { label: `blackbox-${port}` },
  );
}

export interface PrometheusStack {
  readonly settings: PrometheusStackSettings;
  /** http://127.0.0.1:<promPort> (inside the namespace). */
  readonly url: string;
  readonly prometheus: SpawnedProcess;
  readonly alertmanager: SpawnedProcess;
  /** Stops both processes (only these). */
  stop(): Promise<void>;
}

/** Starts one Prometheus and its Alertmanager in `where` (default srv), fresh data under `dir`. */
export function startPrometheusStack(
  lab: ShopLab,
  s: PrometheusStackSettings,
  t: PrometheusStackTargets,
  dir: string,
  where = 'srv',
): PrometheusStack {
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  mkdirSync(join(dir, 'am'), { recursive: true });
  const rulesPath = join(dir, 'rules.yml');
  const files = prometheusStackFiles(s, t, rulesPath);
  writeFileSync(rulesPath, files.rules);
  writeFileSync(join(dir, 'prometheus.yml'), files.prometheus);
  writeFileSync(join(dir, 'alertmanager.yml'), files.alertmanager);
  const tag = dir.split('/').pop() ?? s.name;
  const alertmanager = lab.spawnIn(
    where,
    [
      'prometheus-alertmanager',
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am')}`,
      `--web.listen-address=127.0.0.1:${s.amPort}`,
      '--cluster.listen-address=',
    ],
    { label: `${tag}-am` },
  );
  const prometheus = lab.spawnIn(
    where,
    [
      'prometheus',
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${s.promPort}`,
    ],
    { label: `${tag}-prom` },
  );
  return {
    settings: s,
    url: `http://127.0.0.1:${s.promPort}`,
    prometheus,
    alertmanager,
    stop: async () => {
      await Promise.all([lab.kill(prometheus), lab.kill(alertmanager)]);
    },
  };
}
