/**
 * Builds the context an audit runs in: one packet space over the ruleset, hooks compiled lazily and once, the
 * declared host and its services resolved from the config (plus services declared inline with --public), and the
 * audit settings. Pure: the caller reads files, sockets and the date.
 */

import type { HostConfig, PortDecl, RampartConfig, ServiceConfig } from '../../config/types.js';
import { UserError } from '../../errors.js';
import type { Ruleset } from '../../firewall/model.js';
import type { TraceHook } from '../../firewall/tracer.js';
import {
  type CompiledBddRuleset,
  compileAnyState,
  compileRuleset,
  createChainMemo,
  dependsOnState,
} from '../compile.js';
import { createPacketSpace } from '../packet-space.js';
import type { AuditContext, ListeningSocket } from './types.js';

export interface AuditInput {
  readonly ruleset: Ruleset;
  readonly file: string;
  readonly config?: RampartConfig;
  /** `--host NAME`: which declared host this ruleset belongs to. */
  readonly hostName?: string;
  /** `--public tcp/80,tcp/443`: an inline service on this host. */
  readonly publicPorts?: readonly PortDecl[];
  readonly listening?: readonly ListeningSocket[];
  /** YYYY-MM-DD. */
  readonly today: string;
  /** Interface names queries will ask about that no rule mentions. */
  readonly interfaces?: readonly string[];
  /** Compilation progress per hook (progress lines): rules walked for the first time, of all rules. */
  readonly onCompile?: (hook: TraceHook, walked: number, total: number) => void;
}

export function createAuditContext(input: AuditInput): AuditContext {
  const { config } = input;
  let host: HostConfig | undefined;
  if (input.hostName !== undefined) {
    host = config?.hosts.find((h) => h.name === input.hostName);
    if (!host) {
      const known = config?.hosts.map((h) => h.name).join(', ');
      throw new UserError(
        'RAMPART_ERR_USAGE',
        `--host ${input.hostName}: no such host in ${config?.file ?? 'the config (no --config given)'}; ${known ? `declared hosts: ${known}` : 'declare it under hosts:'}`,
      );
    }
  } else if (config && config.hosts.length === 1) {
    host = config.hosts[0];
  }
  const services: ServiceConfig[] = [];
  if (config) {
    for (const s of config.services) if (!host || s.hosts.includes(host.name)) services.push(s);
  }
  if (input.publicPorts && input.publicPorts.length > 0) {
    services.push({
      name: 'inline (--public)',
      hosts: host ? [host.name] : [],
      public: input.publicPorts,
      at: { file: '<command line>', line: 1, column: 1 },
    });
  }
  const space = createPacketSpace([input.ruleset], input.interfaces ? { interfaces: input.interfaces } : {});
  const cache = new Map<TraceHook, CompiledBddRuleset>();
  const anyState = new Map<TraceHook, CompiledBddRuleset>();
  const stateful = dependsOnState(input.ruleset);
  // The hook paths share the runs of the chains they have in common (prerouting's on input and forward).
  const memo = createChainMemo(space);
  const compiled = (hook: TraceHook): CompiledBddRuleset => {
    let c = cache.get(hook);
    if (!c) {
      const progress = input.onCompile;
      c = compileRuleset(input.ruleset, {
        hook,
        space,
        memo,
        ...(progress ? { onProgress: (w: number, t: number) => progress(hook, w, t) } : {}),
      });
      cache.set(hook, c);
    }
    return c;
  };
  return {
    ruleset: input.ruleset,
    file: input.file,
    space,
    compiled,
    compiledAnyState(hook) {
      // No stateful match with a known fresh-source outcome: the default compilation is the same one.
      if (!stateful) return compiled(hook);
      let c = anyState.get(hook);
      if (!c) {
        c = compileAnyState(input.ruleset, compiled(hook), { memo });
        anyState.set(hook, c);
      }
      return c;
    },
    ...(config ? { config } : {}),
    ...(host ? { host } : {}),
    services,
    addresses: host?.addresses ?? [],
    adminNetworks: config?.adminNetworks ?? [],
    settings: config?.audit ?? { rules: {} },
    ...(input.listening ? { listening: input.listening } : {}),
    today: input.today,
  };
}
