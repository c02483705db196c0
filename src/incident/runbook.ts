/**
 * Runbooks (issue 16 §4): Markdown files referenced per service and per alert route in rampart.yaml
 * (`runbook: runbooks/shop.md`, relative to the config file), shown with the alert and with the incident. Parsed
 * here into steps, pure (the text comes in; the config loader reads the file):
 *
 * - the title is the first `# ` heading (else the file's name);
 * - the steps are the top-level items of the ordered lists (`1.` or `1)`); a runbook without one has one step per
 *   `## ` section, and one without either has one step per top-level bullet;
 * - a step names a `rampart …` command in an inline code span (`` `rampart incident show 12` ``) or in a fenced code
 *   block under it (a line `rampart …` or `$ rampart …`): those are listed as the step's commands, to be run as
 *   written. Other commands (`journalctl …`) stay in the text.
 */

export interface RunbookStep {
  /** 1-based. */
  readonly n: number;
  /** The step as written, Markdown, without its list marker; fenced blocks kept. */
  readonly text: string;
  /** The `rampart …` commands it names, in order, once each. */
  readonly commands: readonly string[];
  /** The line of the file it starts on (1-based). */
  readonly line: number;
}

export interface Runbook {
  /** As written in rampart.yaml (relative to the config file). */
  readonly path: string;
  readonly title: string;
  readonly steps: readonly RunbookStep[];
}

const FENCE_RE = /^ {0,3}(`{3,}|~{3,})/;
const ORDERED_RE = /^ {0,3}(\d{1,9})[.)](?:\s+|$)/;
const BULLET_RE = /^ {0,3}[-*+](?:\s+|$)/;
const H1_RE = /^ {0,3}#\s+(.*?)\s*#*\s*$/;
const H2_RE = /^ {0,3}##\s+(.*?)\s*#*\s*$/;
const INLINE_CODE_RE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g;

/** A `rampart` command line (`$ ` prompts dropped), or undefined. */
function commandOf(line: string): string | undefined {
  const t = line.trim().replace(/^\$\s+/, '');
  return /^rampart(\s|$)/.test(t) ? t.replace(/\s+/g, ' ') : undefined;
}

interface Block {
  readonly kind: 'ordered' | 'bullet' | 'h2';
  readonly line: number;
  readonly lines: string[];
}

/** The file's lines with each fenced block's lines marked, so list markers and headings inside are not read. */
function fencedLines(lines: readonly string[]): boolean[] {
  const inFence: boolean[] = [];
  let fence: string | null = null;
  for (const l of lines) {
    const m = FENCE_RE.exec(l);
    if (fence === null) {
      inFence.push(m !== null);
      if (m) fence = (m[1] as string)[0] as string;
    } else {
      inFence.push(true);
      if (m && (m[1] as string)[0] === fence) fence = null;
    }
  }
  return inFence;
}

function blocksOf(lines: readonly string[], fenced: readonly boolean[], kind: Block['kind']): Block[] {
  const re = kind === 'ordered' ? ORDERED_RE : kind === 'bullet' ? BULLET_RE : H2_RE;
  const out: Block[] = [];
  let cur: Block | null = null;
  lines.forEach((l, i) => {
    const starts = fenced[i] ? null : re.exec(l);
    if (starts) {
      cur = { kind, line: i + 1, lines: [kind === 'h2' ? (starts[1] ?? '') : l.slice(starts[0].length)] };
      out.push(cur);
      return;
    }
    if (cur === null) return;
    const c: Block = cur;
    if (!fenced[i]) {
      // A list item ends at a heading, or at an unindented line that is not its lazy continuation.
      if ((kind === 'h2' ? /^ {0,3}#{1,2}\s/ : /^ {0,3}#{1,6}\s/).test(l)) {
        cur = null;
        return;
      }
      if (kind !== 'h2' && l.trim() !== '' && !/^\s/.test(l) && c.lines[c.lines.length - 1]?.trim() === '') {
        // Another list or a paragraph after a blank line: the item is over, unless it is a fenced block.
        if (!FENCE_RE.test(l)) {
          cur = null;
          return;
        }
      }
    }
    c.lines.push(l);
  });
  return out;
}

function dedent(lines: readonly string[]): string {
  const indents = lines
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => /^ */.exec(l)?.[0].length ?? 0);
  const cut = Math.min(4, ...indents);
  return [lines[0] ?? '', ...lines.slice(1).map((l) => l.slice(Math.min(cut, /^ */.exec(l)?.[0].length ?? 0)))]
    .join('\n')
    .trim();
}

function commandsOf(lines: readonly string[]): string[] {
  const out: string[] = [];
  const add = (c: string | undefined) => {
    if (c !== undefined && !out.includes(c)) out.push(c);
  };
  const fenced = fencedLines(lines);
  lines.forEach((l, i) => {
    if (fenced[i]) {
      if (!FENCE_RE.test(l)) add(commandOf(l));
      return;
    }
    for (const m of l.matchAll(INLINE_CODE_RE)) add(commandOf(m[2] ?? ''));
  });
  return out;
}

/** The runbook's steps, from its Markdown text. `path` is the reference as written (for the title's fallback). */
export function parseRunbook(text: string, path: string): Runbook {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const fenced = fencedLines(lines);
  let title: string | undefined;
  lines.forEach((l, i) => {
    if (title === undefined && !fenced[i]) title = H1_RE.exec(l)?.[1];
  });
  let blocks = blocksOf(lines, fenced, 'ordered');
  if (blocks.length === 0) blocks = blocksOf(lines, fenced, 'h2');
  if (blocks.length === 0) blocks = blocksOf(lines, fenced, 'bullet');
  const steps = blocks
    .map((b) => ({ b, text: dedent(b.lines) }))
    .filter(({ text }) => text !== '')
    .map(({ b, text }, i) => ({ n: i + 1, text, commands: commandsOf(b.lines), line: b.line }));
  return { path, title: title || (path.split('/').pop() ?? path).replace(/\.md$/i, ''), steps };
}

/** The runbook as plain text for a terminal: its title, then each step numbered with its commands marked `$`. */
export function formatRunbook(r: Runbook): string {
  const out = [`${r.title} (${r.path})`];
  if (r.steps.length === 0) out.push('  (no steps: write them as a numbered list)');
  for (const s of r.steps) {
    const [first = '', ...rest] = s.text
      .split('\n')
      .filter((l) => !FENCE_RE.test(l) && commandOf(l) === undefined && l.trim() !== '');
    out.push(`  ${s.n}. ${first}`);
    for (const l of rest) out.push(`     ${l.trim()}`);
    for (const c of s.commands) out.push(`     $ ${c}`);
  }
  return out.join('\n');
}
