/**
 * The postmortem's Markdown as page elements: headings, paragraphs, bullet and numbered lists, fenced code, `code`,
 * **bold** and *emphasis*. Everything is made as Preact elements with the text as text: nothing is parsed as HTML,
 * so `<script>` or `<img onerror=…>` in a postmortem shows as the characters typed (no raw HTML, no links to follow).
 */
import { html } from 'htm/preact';

type Node = unknown;

/** `code`, **bold** and *emphasis* within one line. */
export function inline(text: string): Node[] {
  const out: Node[] = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(html`<code>${m[1]}</code>`);
    else if (m[2] !== undefined) out.push(html`<strong>${inline(m[2])}</strong>`);
    else out.push(html`<em>${m[3]}</em>`);
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function markdown(text: string): Node[] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: Node[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (line.trim() === '') {
      i++;
      continue;
    }
    const fence = /^```/.exec(line);
    if (fence) {
      const code: string[] = [];
      for (i++; i < lines.length && !/^```/.test(lines[i] as string); i++) code.push(lines[i] as string);
      i++;
      out.push(html`<pre tabindex="0"><code>${code.join('\n')}</code></pre>`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      // The page's own h1 is the incident's: the document's headings start one level lower.
      const level = Math.min(6, (h[1] as string).length + 1);
      const text = h[2] as string;
      out.push(
        level === 2
          ? html`<h2>${inline(text)}</h2>`
          : level === 3
            ? html`<h3>${inline(text)}</h3>`
            : level === 4
              ? html`<h4>${inline(text)}</h4>`
              : level === 5
                ? html`<h5>${inline(text)}</h5>`
                : html`<h6>${inline(text)}</h6>`,
      );
      i++;
      continue;
    }
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      const ordered = /^\s*\d+[.)]\s+/.test(line);
      const items: Node[] = [];
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i] as string)) {
        items.push(html`<li>${inline((lines[i] as string).replace(/^\s*([-*+]|\d+[.)])\s+/, ''))}</li>`);
        i++;
      }
      out.push(ordered ? html`<ol>${items}</ol>` : html`<ul>${items}</ul>`);
      continue;
    }
    const para: string[] = [];
    while (
      i < lines.length &&
      (lines[i] as string).trim() !== '' &&
      !/^(#{1,6}\s|```|\s*([-*+]|\d+[.)])\s+)/.test(lines[i] as string)
    ) {
      para.push((lines[i] as string).trim());
      i++;
    }
    out.push(html`<p>${inline(para.join(' '))}</p>`);
  }
  return out;
}
