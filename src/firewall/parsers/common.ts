/** Helpers shared by the parsers. */
import { ParseError } from '../../errors.js';

/** A record lookup that ignores inherited properties (input may contain the word `constructor`). */
export function own<T>(rec: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

/** Where scanWord stopped. One object per caller, reused, so the hot path allocates nothing per token. */
export interface WordEnd {
  /** 0-based index just after the word. */
  i: number;
  /** Some part of the word was in double quotes. */
  quoted: boolean;
}

/**
 * Reads one word the way iptables-restore and ipset restore split lines: whitespace ends it, double quotes group
 * (they may sit in the middle of a word), `\` inside quotes takes the next character literally. The word started
 * at `start`; `line.slice(start, i)` is already read and holds no quote. Throws a ParseError at `start` for an
 * unclosed quote. Sets `end` and returns the word's text.
 */
export function scanWord(line: string, start: number, i: number, file: string, lineNo: number, end: WordEnd): string {
  const n = line.length;
  let s = line.slice(start, i);
  let quoted = false;
  while (i < n) {
    const d = line.charCodeAt(i);
    if (d === 32 || d === 9) break;
    if (d === 34) {
      quoted = true;
      i++;
      let closed = false;
      // Append whole slices, not characters: a string built one character at a time stays a deep rope in
      // memory (about 1 KiB for a 40-character comment) until something reads it.
      let seg = i;
      while (i < n) {
        const e = line.charCodeAt(i);
        if (e === 92 && i + 1 < n) {
          s += line.slice(seg, i) + line[i + 1];
          i += 2;
          seg = i;
        } else if (e === 34) {
          s += line.slice(seg, i);
          closed = true;
          i++;
          break;
        } else {
          i++;
        }
      }
      if (!closed) throw new ParseError(file, lineNo, start + 1, line.slice(start), 'a closing double quote');
    } else {
      const seg = i;
      while (i < n) {
        const e = line.charCodeAt(i);
        if (e === 32 || e === 9 || e === 34) break;
        i++;
      }
      s += line.slice(seg, i);
    }
  }
  end.i = i;
  end.quoted = quoted;
  return s;
}
