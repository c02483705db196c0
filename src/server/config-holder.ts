/** The config in force: read from a file (reloadable) or the embedded empty default. */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../config/load.js';
import type { RampartConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import type { ConfigHolder } from './route.js';

function read(path: string): { config: RampartConfig; text: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(
      'RAMPART_ERR_FILE',
      `${path}: cannot read the config (${(e as NodeJS.ErrnoException).code ?? e})`,
      {
        file: path,
      },
    );
  }
  return { config: parseConfig(text, path), text };
}

const EMPTY = { text: '{}\n', file: 'embedded:empty.yaml' };

/** `path` null: an empty config (no hosts), so the server runs but every proposal names an unknown host. */
export function configHolder(path: string | null): ConfigHolder {
  let loaded = path ? read(path) : { config: parseConfig(EMPTY.text, EMPTY.file), text: EMPTY.text };
  return {
    path,
    current: () => loaded.config,
    source: () => (path ? { text: loaded.text, file: path } : EMPTY),
    reload: () => {
      if (!path) return { ok: true, config: loaded.config };
      try {
        loaded = read(path);
        return { ok: true, config: loaded.config };
      } catch (e) {
        return { ok: false, error: e instanceof Error ? e : new Error(String(e)) };
      }
    },
  };
}
