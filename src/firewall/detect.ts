import type { InputFormat } from './model.js';

/** Guesses the format of a ruleset text: nft JSON, iptables-save (also ufw's *.rules files), or nft text. */
export function detectFormat(text: string): InputFormat {
  const start = text.trimStart();
  if (start.startsWith('{') || start.startsWith('[')) return 'nft-json';
  for (const raw of text.split('\n', 200)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^\*(filter|nat|mangle|raw|security)\b/.test(line) || /^:[A-Za-z0-9_.-]+ \S+/.test(line))
      return 'iptables-save';
    if (/^-A\s/.test(line) || line === 'COMMIT') return 'iptables-save';
    return 'nft-text';
  }
  return 'nft-text';
}
