/**
 * Every command of the CLI, with a one-line summary for `rampart --help` and a loader: only the command that runs is
 * imported (the engine, the server and the store are heavy), so `--help`, `--version` and small commands start fast.
 * The reference in docs/cli.md and its test (test/cli/flags-matrix.test.ts) load them all.
 */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const COMMANDS: readonly { name: string; summary: string; load: () => Promise<Register> }[] = [
  {
    name: 'parse',
    summary: 'parse a ruleset and print its model',
    load: async () => (await import('./commands/parse.js')).registerParse,
  },
  {
    name: 'trace',
    summary: 'trace one packet: the verdict, the deciding rule, the path',
    load: async () => (await import('./commands/trace.js')).registerTrace,
  },
  {
    name: 'reach',
    summary: 'what a flow reaches: accepted, dropped, by which rules (every packet at once)',
    load: async () => (await import('./commands/reach.js')).registerReach,
  },
  {
    name: 'rules',
    summary: 'shadowed, redundant and empty rules',
    load: async () => (await import('./commands/rules.js')).registerRules,
  },
  {
    name: 'diff',
    summary: 'the semantic diff of two rulesets: which packets change verdict',
    load: async () => (await import('./commands/diff.js')).registerDiff,
  },
  {
    name: 'intents',
    summary: 'check must-allow / must-deny intents',
    load: async () => (await import('./commands/intents.js')).registerIntents,
  },
  {
    name: 'audit',
    summary: 'review a ruleset against best practice and the declared site',
    load: async () => (await import('./commands/audit.js')).registerAudit,
  },
  {
    name: 'plan',
    summary: 'plan a change offline: diff, findings, blast radius, risk, blockers',
    load: async () => (await import('./commands/plan.js')).registerPlan,
  },
  {
    name: 'serve',
    summary: 'run the Rampart server (change workflow, API)',
    load: async () => (await import('./commands/serve.js')).registerServe,
  },
  {
    name: 'init',
    summary: 'create the store and the first admin token',
    load: async () => (await import('./commands/init.js')).registerInit,
  },
  {
    name: 'token',
    summary: 'API tokens: create, list, revoke',
    load: async () => (await import('./commands/token.js')).registerToken,
  },
  {
    name: 'change',
    summary: 'changes on the server: propose, show, approve, apply, ...',
    load: async () => (await import('./commands/change.js')).registerChange,
  },
  {
    name: 'audit-log',
    summary: 'the hash-chained audit trail: verify, head, export',
    load: async () => (await import('./commands/audit-log.js')).registerAuditLog,
  },
  {
    name: 'agent',
    summary: 'run the agent that applies changes on this host',
    load: async () => (await import('./commands/agent.js')).registerAgent,
  },
  {
    name: 'monitors',
    summary: 'monitors and services: state by quorum over vantage points, diagnosis',
    load: async () => (await import('./commands/monitors.js')).registerMonitors,
  },
  {
    name: 'events',
    summary: 'monitoring events: state changes, diagnoses, traffic drops',
    load: async () => (await import('./commands/events.js')).registerEvents,
  },
  {
    name: 'traffic',
    summary: 'incoming request rate per service now vs expected, and drops',
    load: async () => (await import('./commands/traffic.js')).registerTraffic,
  },
  {
    name: 'alerts',
    summary: 'alerts firing and why each is or is not paged; ack, resolve, route',
    load: async () => (await import('./commands/alerts.js')).registerAlerts,
  },
  {
    name: 'silence',
    summary: 'silences: add, list, expire',
    load: async () => (await import('./commands/alerts.js')).registerSilence,
  },
  {
    name: 'oncall',
    summary: 'who is on call now and next, per schedule',
    load: async () => (await import('./commands/alerts.js')).registerOncall,
  },
  {
    name: 'incident',
    summary: 'incidents: list, show with the timeline, declare, ack, note, status, assign, resolve, postmortem',
    load: async () => (await import('./commands/incident.js')).registerIncident,
  },
  {
    name: 'incidents',
    summary: 'incident figures: counts by severity and service, MTTD, MTTA, MTTR (median and p90)',
    load: async () => (await import('./commands/incident.js')).registerIncidentsStats,
  },
  {
    name: 'probe',
    summary: 'run a vantage point that probes the monitors from another network',
    load: async () => (await import('./commands/probe.js')).registerProbe,
  },
  {
    name: 'hosts',
    summary: 'hosts of the config: desired revision, agent, drift',
    load: async () => (await import('./commands/hosts.js')).registerHosts,
  },
  {
    name: 'demo',
    summary: 'trace the founding outage, then serve the dashboard on the embedded example (npm start)',
    load: async () => (await import('./commands/demo.js')).registerDemo,
  },
  {
    name: 'lab',
    summary: 'a shop in network namespaces on this machine: lab up / outage / down',
    load: async () => (await import('./commands/lab.js')).registerLab,
  },
  {
    name: 'drill',
    summary: 'replay the founding outage and its cousins in a lab, scored: drill list / drill run',
    load: async () => (await import('./commands/drill.js')).registerDrill,
  },
];
