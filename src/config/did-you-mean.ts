/** Suggestions for misspelt keys and ids in rampart.yaml and intents files. */

/** ` (did you mean 'x'?)` when a known word is a small typo away from `word`, else ''. */
export function didYouMean(word: string, known: readonly string[]): string {
  const kebab = word
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
  if (kebab !== word && known.includes(kebab)) return ` (did you mean '${kebab}'?)`;
  // Up to half the word may be wrong (adress -> addresses), never all of it.
  const limit = Math.min(Math.max(2, Math.floor(word.length / 2)), word.length - 1);
  let best = limit + 1;
  let found: string[] = [];
  for (const k of known) {
    const d = editDistance(kebab, k, best);
    if (d < best) {
      best = d;
      found = [k];
    } else if (d === best) found.push(k);
  }
  if (found.length === 0 || best > limit) return '';
  return ` (did you mean ${found
    .slice(0, 3)
    .map((k) => `'${k}'`)
    .join(' or ')}?)`;
}

/** Levenshtein distance, giving up (returning `cap + 1`) once it exceeds `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length] ?? cap + 1;
}
