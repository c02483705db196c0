import { UserError } from '../../errors.js';
import type { Ruleset } from '../model.js';

export interface IncludedFile {
  readonly file: string;
  readonly text: string;
}

export interface NftTextOptions {
  /** Resolves an `include "path"` (glob allowed) relative to the including file. I/O stays outside the parser. */
  readonly include?: (path: string, fromFile: string) => readonly IncludedFile[];
}

/** Parses nftables text as in /etc/nftables.conf or `nft list ruleset`. */
export function parseNftText(_text: string, file: string, _opts: NftTextOptions = {}): Ruleset {
  throw new UserError('RAMPART_ERR_FORMAT_UNKNOWN', `${file}: nft text parser not implemented yet`);
}
