/**
 * The embedded example `npm start` serves (issue 17 §4): the shop of the founding postmortem (web1 and web2 in one
 * redundancy group, the shop public on 80 and 443, ssh from the admin network only), declared for a machine where
 * nothing runs as root. The two backends are the demo shop on loopback (127.0.0.1 and 127.0.0.2, one ephemeral
 * port), so the server's monitors probe something real; the firewall of the machine is never touched.
 */
import { FOUNDING_FIXED_NFT, FOUNDING_OUTAGE_NFT } from '../cli/demo-data.js';

export const DEMO_HOSTS = { web1: '127.0.0.1', web2: '127.0.0.2' } as const;
export type DemoHost = keyof typeof DEMO_HOSTS;
export const DEMO_TIMEZONE = 'Europe/Istanbul';
/** How often the server probes each backend (the history written before start uses the same cadence). */
export const PROBE_INTERVAL_S = 10;

/** rampart.yaml of the example: `port` is the demo shop's health port on both backends. */
export function demoConfig(port: number): string {
  return `# The shop of the founding postmortem, as \`npm start\` serves it (src/demo/site.ts).
# web1 and web2 are the demo shop on loopback: its health port ${port} stands in for 80/443, which need root.
site: {name: shop, timezone: ${DEMO_TIMEZONE}}

hosts:
  - {name: web1, addresses: [${DEMO_HOSTS.web1}], firewall: nftables, group: web}
  - {name: web2, addresses: [${DEMO_HOSTS.web2}], firewall: nftables, group: web}

services:
  - name: shop
    group: web
    public: [tcp/80, tcp/443]
    health:
      - http: {port: ${port}, path: /healthz}
    monitor: {interval: ${PROBE_INTERVAL_S}s, timeout: 2s, failures: 2}
    traffic: {}

admin-networks:
  - 198.51.100.0/24

policy:
  approvals: 1
  canary: [web1]

status-page:
  title: Online store status
  services:
    - {service: shop, name: Online store}
`;
}

/** What web1 and web2 should run: the ruleset the network team restored at the end of the outage. */
export const DESIRED_NFT = FOUNDING_FIXED_NFT;

/** The change that repeats the founding outage: the input policy drop without the accept for 80/443. */
export const OUTAGE_CHANGE = {
  target: { group: 'web' },
  reason: 'tighten the input chain: default drop, admin ssh only (the edit of the founding outage, again)',
  format: 'nft-text',
  file: 'embedded:outage.nft',
  ruleset: FOUNDING_OUTAGE_NFT,
} as const;
