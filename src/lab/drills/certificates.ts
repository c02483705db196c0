/**
 * The certificates of the drills' TLS front end (cert-expiring), made with openssl when the drill lab starts: a
 * lab certificate authority, and two certificates it signs for the load balancer's address, one with 90 days left
 * (`renewed`) and one with 5 (`expiring`, as when a renewal silently failed weeks ago). Rampart's server trusts the
 * lab's authority (NODE_EXTRA_CA_CERTS), so its TLS monitor judges only the dates; nothing here touches the network.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../executor.js';
import type { DrillCertificate } from './scenarios.js';

export const CERTIFICATE_DAYS: Readonly<Record<DrillCertificate, number>> = { renewed: 90, expiring: 5 };

export interface DrillCertificates {
  /** The lab authority's certificate (for NODE_EXTRA_CA_CERTS). */
  readonly ca: string;
  /** The PEM file HAProxy serves (starts as `renewed`; setCertificate() replaces what it holds in memory). */
  readonly crt: string;
  /** Each certificate with its key, as PEM text. */
  readonly pem: Readonly<Record<DrillCertificate, string>>;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makeDrillCertificates(dir: string, address: string): Promise<DrillCertificates> {
  const f = (name: string) => join(dir, name);
  const run = (argv: string[]) => runCommand(['openssl', ...argv], { timeoutMs: 30_000 });
  await run(
    ['req', '-x509', ...KEY, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '100'].concat([
      '-subj',
      '/CN=Rampart drill lab CA',
    ]),
  );
  const pem = {} as Record<DrillCertificate, string>;
  for (const [which, days] of Object.entries(CERTIFICATE_DAYS) as [DrillCertificate, number][]) {
    await run(['req', ...KEY, '-keyout', f(`${which}.key`), '-out', f(`${which}.csr`), '-subj', '/CN=shop.lab']);
    writeFileSync(f(`${which}.ext`), `subjectAltName=IP:${address},DNS:shop.lab\n`);
    await run([
      'x509',
      '-req',
      '-in',
      f(`${which}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      f(`${which}.ext`),
      '-out',
      f(`${which}.crt`),
    ]);
    pem[which] =
      `${readFileSync(f(`${which}.crt`), 'utf8').trim()}\n${readFileSync(f(`${which}.key`), 'utf8').trim()}\n`;
  }
  writeFileSync(f('shop.pem'), pem.renewed, { mode: 0o600 });
  return { ca: f('ca.crt'), crt: f('shop.pem'), pem };
}
