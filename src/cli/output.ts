import { RampartError } from '../errors.js';
import { jsonReplacer } from '../firewall/values.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

/** Turns any error into a message on stderr and an exit code; never an uncaught exception. */
export function reportError(e: unknown, json: boolean): number {
  if (e instanceof RampartError) {
    if (json) {
      process.stderr.write(
        `${JSON.stringify({ error: { code: e.code, message: e.message, ...e.details } }, jsonReplacer)}\n`,
      );
    } else {
      process.stderr.write(`rampart: ${e.message}\n`);
    }
    return e.exitCode;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`rampart: internal error (RAMPART_ERR_INTERNAL): ${msg}\n`);
  return 70;
}

/** Runs a command body, mapping errors to exit codes. */
export async function run(json: boolean, body: () => void | Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    process.exitCode = reportError(e, json);
  }
}
