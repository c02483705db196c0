/**
 * Runs once before any test file: builds dist/ when it is missing or older than src/, so the files that run the
 * built CLI or the built plan worker do not race each other rebuilding it.
 */
import { ensureBuilt } from './test/cli/cli.js';

export default function setup(): void {
  ensureBuilt();
}
