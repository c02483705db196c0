import { UserError } from '../../errors.js';
import type { L3, Ruleset } from '../model.js';

export interface IptablesOptions {
  /** `ipset save` output, for `-m set --match-set`. */
  readonly ipsets?: { readonly file: string; readonly text: string };
  /** Force the family (iptables-save = ipv4, ip6tables-save = ipv6); detected from the addresses otherwise. */
  readonly family?: L3;
}

/** Parses iptables-save / ip6tables-save output (and ufw's *.rules files, which use the same format). */
export function parseIptablesSave(_text: string, file: string, _opts: IptablesOptions = {}): Ruleset {
  throw new UserError('RAMPART_ERR_FORMAT_UNKNOWN', `${file}: iptables-save parser not implemented yet`);
}
