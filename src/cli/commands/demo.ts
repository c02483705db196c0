import type { Command } from 'commander';

export function registerDemo(program: Command): void {
  program.command('demo').description('run Rampart on its embedded example (not implemented yet)');
}
