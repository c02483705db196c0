/** The config in force: read from a file (reloadable) or the embedded empty default. */
import { parseConfig } from '../config/load.js';
import type { RampartConfig } from '../config/types.js';
import { readTextFile } from '../firewall/load.js';
import type { ConfigHolder } from './route.js';

function read(path: string): { config: RampartConfig; text: string } {
  const text = readTextFile(path, 'config file');
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
