import type { Command } from 'commander';

export function registerTrace(program: Command): void {
  program.command('trace').description('trace a packet through a ruleset (not implemented yet)');
}
