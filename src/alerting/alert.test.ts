import { describe, expect, it } from 'vitest';
import { cleanLabels, fingerprint, firing, formatLabels, labelProblem } from './alert.js';

describe('alert fingerprints', () => {
  it("agree with Prometheus's own test vectors (FNV-1a 64 over sorted names and values)", () => {
    expect(fingerprint({})).toBe(14695981039346656037n.toString(16));
    expect(fingerprint({ name: 'garland, briggs', fear: 'love is not enough' })).toBe(
      5799056148416392346n.toString(16).padStart(16, '0'),
    );
  });

  it('do not depend on the order labels were written in, and differ when a value does', () => {
    expect(fingerprint({ a: '1', b: '2' })).toBe(fingerprint({ b: '2', a: '1' }));
    expect(fingerprint({ a: '1', b: '2' })).not.toBe(fingerprint({ a: '1', b: '3' }));
    // The separator keeps a=bc and ab=c apart.
    expect(fingerprint({ a: 'bc' })).not.toBe(fingerprint({ ab: 'c' }));
  });

  it('ignore empty label values, as Prometheus does', () => {
    expect(cleanLabels({ a: '1', b: '', c: undefined })).toEqual({ a: '1' });
    const a = firing({ labels: { alertname: 'X', host: '' }, source: 'test' }, 0);
    expect(a.fingerprint).toBe(fingerprint({ alertname: 'X' }));
    expect(a).toMatchObject({ state: 'firing', startsAt: '1970-01-01T00:00:00.000Z', endsAt: null });
  });

  it('say what is wrong with a label set', () => {
    expect(labelProblem({ alertname: 'X', 'bad-name': '1' })).toMatch(/bad-name/);
    expect(labelProblem({ service: 'shop' })).toMatch(/alertname/);
    expect(labelProblem({ alertname: 'X' })).toBeUndefined();
    expect(formatLabels({ b: '2', a: '1' })).toBe('{a="1", b="2"}');
  });
});
