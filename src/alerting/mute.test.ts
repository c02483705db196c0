import { describe, expect, it } from 'vitest';
import { firing } from './alert.js';
import { type Matcher, parseMatcher } from './matchers.js';
import { DEFAULT_INHIBIT_RULES, muter, type Silence, silenceStatus, silenceUpdates } from './mute.js';

const ms = (...texts: string[]): Matcher[] =>
  texts.map((t) => {
    const r = parseMatcher(t);
    if (typeof r === 'string') throw new Error(r);
    return r;
  });
const H = 3_600_000;
const silence = (over: Partial<Silence>): Silence => ({
  id: 's1',
  matchers: ms('service="shop"'),
  startsAt: new Date(0).toISOString(),
  endsAt: new Date(2 * H).toISOString(),
  createdBy: 'alice',
  comment: 'deploy',
  untilResolved: false,
  matchedAt: null,
  expiredAt: null,
  ...over,
});
const shopDown = firing({ labels: { alertname: 'MonitorDown', service: 'shop', monitor: 'shop' }, source: 't' }, 0);
const web1Down = firing(
  { labels: { alertname: 'MonitorDown', service: 'shop', host: 'web1', monitor: 'shop@web1' }, source: 't' },
  0,
);
const cartWeb1 = firing(
  { labels: { alertname: 'MonitorDown', service: 'cart', host: 'web1', monitor: 'cart@web1' }, source: 't' },
  0,
);

describe('silences', () => {
  it('mute matching alerts between start and end only', () => {
    const s = silence({ startsAt: new Date(H).toISOString() });
    expect(silenceStatus(s, 0)).toBe('pending');
    expect(silenceStatus(s, H)).toBe('active');
    expect(silenceStatus(s, 2 * H)).toBe('expired');
    const at = (now: number) => muter({ silences: [s], inhibitRules: [], firing: [], nowMs: now });
    expect(at(0)(web1Down)).toBeNull();
    expect(at(H)(web1Down)).toEqual({ kind: 'silenced', silence: 's1' });
    expect(at(H)(cartWeb1)).toBeNull();
    expect(at(2 * H)(web1Down)).toBeNull();
  });

  it('end an until-resolved silence when what it matched has resolved, not before it matched anything', () => {
    const s = silence({ untilResolved: true, endsAt: new Date(24 * H).toISOString() });
    expect(silenceUpdates([s], [], 10)).toEqual({ matched: [], expire: [] });
    expect(silenceUpdates([s], [web1Down], 10)).toEqual({ matched: ['s1'], expire: [] });
    const seen = { ...s, matchedAt: new Date(10).toISOString() };
    expect(silenceUpdates([seen], [web1Down, cartWeb1], 20)).toEqual({ matched: [], expire: [] });
    expect(silenceUpdates([seen], [cartWeb1], 30)).toEqual({ matched: [], expire: ['s1'] });
    expect(silenceStatus({ ...seen, expiredAt: new Date(30).toISOString() }, 30)).toBe('expired');
  });
});

describe('inhibition', () => {
  it("by default, a service DOWN as a whole mutes its hosts' alerts, not other services'", () => {
    const mute = muter({ silences: [], inhibitRules: DEFAULT_INHIBIT_RULES, firing: [shopDown, web1Down], nowMs: 0 });
    expect(mute(web1Down)).toMatchObject({ kind: 'inhibited', by: shopDown.fingerprint });
    expect(mute(cartWeb1)).toBeNull();
    expect(mute(shopDown)).toBeNull();
  });

  it('needs the source to fire and the equal labels to agree; an alert does not inhibit itself', () => {
    const rule = {
      sourceMatchers: ms('alertname="MonitorDown"'),
      targetMatchers: ms('alertname="MonitorDown"'),
      equal: ['host'],
    };
    const mute = muter({ silences: [], inhibitRules: [rule], firing: [web1Down], nowMs: 0 });
    expect(mute(web1Down)).toBeNull();
    expect(mute(cartWeb1)).toMatchObject({ kind: 'inhibited', by: web1Down.fingerprint, rule: 0 });
    const none = muter({ silences: [], inhibitRules: [rule], firing: [], nowMs: 0 });
    expect(none(cartWeb1)).toBeNull();
  });

  it('records maintenance last: alerts in a window are muted with its name', () => {
    const mute = muter({
      silences: [],
      inhibitRules: [],
      firing: [],
      nowMs: 0,
      maintenance: (l) => (l.host === 'web1' ? 'patching' : null),
    });
    expect(mute(web1Down)).toEqual({ kind: 'maintenance', window: 'patching' });
    expect(mute(shopDown)).toBeNull();
  });
});
