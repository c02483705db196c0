import { UserError } from '../../errors.js';
import type { Ruleset } from '../model.js';

/** Parses the output of `nft -j list ruleset` (libnftables-json(5)). */
export function parseNftJson(_text: string, file: string): Ruleset {
  throw new UserError('RAMPART_ERR_FORMAT_UNKNOWN', `${file}: nft JSON parser not implemented yet`);
}
