/**
 * Rampart reads every file of the real-world corpus the kernel accepts, and refuses every file the kernel refuses
 * (with the place and what to write instead). The kernel's own verdict on each file is in corpus.json and is
 * checked by test/kernel/agreement.test.ts ("on the real-world corpus").
 */
import { describe, expect, it } from 'vitest';
import { corpusEntries, readCorpusEntry } from './real-world.js';

const entries = corpusEntries();

describe('real-world corpus: read what the kernel reads', () => {
  it('has several dozen files, most of which the kernel accepts', () => {
    expect(entries.length).toBeGreaterThanOrEqual(25);
    expect(entries.filter((e) => e.kernel === 'refuses').length).toBeGreaterThanOrEqual(3);
  });

  for (const e of entries.filter((x) => x.kernel === 'accepts')) {
    it(`reads ${e.id} (${e.files.join(', ')})`, () => {
      const rs = readCorpusEntry(e);
      expect(rs.tables.length).toBeGreaterThan(0);
    });
  }

  for (const e of entries.filter((x) => x.kernel === 'refuses')) {
    it(`refuses ${e.id}, as the kernel does: ${e.kernelSays}`, () => {
      expect(() => readCorpusEntry(e)).toThrow(/:\d+:\d+: /);
    });
  }
});
