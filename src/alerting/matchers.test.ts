import { describe, expect, it } from 'vitest';
import { matchAll, matches, parseMatcher, parseMatchers } from './matchers.js';

const m = (text: string) => {
  const r = parseMatcher(text);
  if (typeof r === 'string') throw new Error(r);
  return r;
};

describe('matchers', () => {
  it('parse the four operators, quoted or not', () => {
    expect(m('severity="critical"')).toEqual({ name: 'severity', op: '=', value: 'critical' });
    expect(m('severity!=warning')).toEqual({ name: 'severity', op: '!=', value: 'warning' });
    expect(m(' service =~ "shop|cart" ')).toEqual({ name: 'service', op: '=~', value: 'shop|cart' });
    expect(m('host!~"web[0-9]+"')).toEqual({ name: 'host', op: '!~', value: 'web[0-9]+' });
    expect(m('x="a \\"quoted\\" value"').value).toBe('a "quoted" value');
  });

  it('anchor regular expressions at both ends', () => {
    expect(matches(m('host=~"web.*"'), { host: 'web1' })).toBe(true);
    expect(matches(m('host=~"web.*"'), { host: 'myweb1' })).toBe(false);
    expect(matches(m('host!~"web.*"'), { host: 'myweb1' })).toBe(true);
  });

  it('treat an absent label as the empty value', () => {
    expect(matches(m('team!="net"'), {})).toBe(true);
    expect(matches(m('team=""'), {})).toBe(true);
    expect(matches(m('team=""'), { team: 'net' })).toBe(false);
    expect(matches(m('team=~".+"'), {})).toBe(false);
  });

  it('say what is wrong with a matcher', () => {
    expect(parseMatcher('severity')).toMatch(/no operator/);
    expect(parseMatcher('1abc="x"')).toMatch(/not a label name/);
    expect(parseMatcher('a=~"("')).toMatch(/regular expression/);
    expect(parseMatcher('a="open')).toMatch(/closing quote/);
    expect(parseMatcher('a~"x"')).toMatch(/unknown operator '~'/);
    expect(parseMatcher('a=x,y')).toMatch(/must be quoted/);
  });

  it('split lists at commas outside quotes, with or without braces', () => {
    const ms = parseMatchers('{severity="critical", service=~"shop,cart"}');
    expect(Array.isArray(ms) && ms.map((x) => x.value)).toEqual(['critical', 'shop,cart']);
    expect(parseMatchers('a=1,b')).toEqual({ index: 2, problem: expect.stringMatching(/no operator/) });
    const list = parseMatchers('severity=critical,service=shop');
    if (!Array.isArray(list)) throw new Error('parse');
    expect(matchAll(list, { severity: 'critical', service: 'shop', host: 'web1' })).toBe(true);
    expect(matchAll(list, { severity: 'critical', service: 'cart' })).toBe(false);
    expect(matchAll([], {})).toBe(true);
  });
});
