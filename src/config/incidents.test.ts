import { describe, expect, it } from 'vitest';
import { DEFAULT_INCIDENT_POLICY } from '../incident/lifecycle.js';
import { ConfigError, parseConfig } from './load.js';

const base = `hosts:
  - name: web1
    addresses: [192.0.2.11]
services:
  - name: shop
    hosts: [web1]
    public: [tcp/80]
`;

const fail = (text: string): string => {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('site.timezone and incidents: in rampart.yaml', () => {
  it('defaults to severity >= critical, SEV2, a 1 h reopen window, a 2 h look-back and UTC', () => {
    const c = parseConfig(`site: shop\n${base}`, 'c.yaml');
    expect(c.site).toBe('shop');
    expect(c.incidents).toEqual(DEFAULT_INCIDENT_POLICY);
  });

  it('reads the site as a map with its time zone, and the incident policy', () => {
    const c = parseConfig(
      `site:\n  name: shop\n  timezone: Europe/Istanbul\n${base}incidents:\n  auto-declare: severity >= warning\n  severity: 3\n  reopen-window: 30m\n  look-back: 4h\n`,
      'c.yaml',
    );
    expect(c.site).toBe('shop');
    expect(c.timeZone).toBe('Europe/Istanbul');
    expect(c.incidents).toEqual({
      autoDeclare: { minSeverity: 'warning', severity: 'SEV3' },
      reopenWindowMs: 30 * 60_000,
      lookBackMs: 4 * 3_600_000,
      timeZone: 'Europe/Istanbul',
    });
    expect(parseConfig(`${base}incidents:\n  auto-declare: off\n`, 'c.yaml').incidents?.autoDeclare).toBeNull();
  });

  it('points at an unknown time zone, a bad threshold, a bad severity and an unknown key, with line and column', () => {
    expect(fail(`site:\n  timezone: Europe/Istambul\n${base}`)).toMatch(
      /c\.yaml:2:13: site\.timezone: 'Europe\/Istambul': unknown time zone \(did you mean 'Europe\/Istanbul'\?\); expected an IANA time zone/,
    );
    expect(fail(`${base}incidents:\n  auto-declare: severity >= critcal\n`)).toMatch(
      /c\.yaml:9:17: incidents\.auto-declare: 'severity >= critcal': unknown severity 'critcal' \(did you mean 'critical'\?\)/,
    );
    expect(fail(`${base}incidents:\n  auto-declare: sev1\n`)).toMatch(
      /incidents\.auto-declare: 'sev1': not a severity threshold/,
    );
    expect(fail(`${base}incidents:\n  severity: SEV5\n`)).toMatch(
      /c\.yaml:9:13: incidents\.severity: .*expected one of SEV1, SEV2, SEV3, SEV4/,
    );
    expect(fail(`${base}incidents:\n  look-back: 2\n`)).toMatch(/incidents\.look-back: '2': the unit is missing/);
    expect(fail(`${base}incidents:\n  reopen-windw: 1h\n`)).toMatch(/incidents.*reopen-windw.*reopen-window/);
    expect(fail(`site:\n  nam: shop\n${base}`)).toMatch(
      /c\.yaml:2:8: site\.nam: 'shop': unknown key 'nam' \(did you mean 'name'\?\)/,
    );
  });
});
