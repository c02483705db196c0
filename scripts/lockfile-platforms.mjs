#!/usr/bin/env node
// Run after any `npm install` that changes dependencies: node scripts/lockfile-platforms.mjs
// Adds lockfile entries for platform-specific optional packages that this machine's registry does not serve
// (npm drops them from the lock on install, then `npm ci` refuses the lock). The entries are never installed here:
// their os/cpu/libc do not match linux-x64-glibc.
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const pk = lock.packages;
function platformOf(name) {
  const n = name.split('/').pop();
  const os =
    ['android', 'darwin', 'freebsd', 'openbsd', 'openharmony', 'win32', 'linux'].find((o) => n.includes(o)) ?? 'linux';
  const cpuMap = [
    ['arm64', 'arm64'],
    ['x64', 'x64'],
    ['ia32', 'ia32'],
    ['loong64', 'loong64'],
    ['ppc64', 'ppc64'],
    ['riscv64', 'riscv64'],
    ['s390x', 's390x'],
    ['arm-', 'arm'],
  ];
  const cpu = cpuMap.find(([k]) => n.includes(k))?.[1];
  const libc = os === 'linux' ? (n.includes('musl') ? 'musl' : 'glibc') : undefined;
  return { os, cpu, libc };
}
let added = 0;
for (const meta of Object.values(pk)) {
  for (const [dep, ver] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (pk[key]) continue;
    const { os, cpu, libc } = platformOf(dep);
    pk[key] = {
      version: ver,
      dev: meta.dev ?? undefined,
      license: meta.license,
      optional: true,
      os: [os],
      ...(cpu ? { cpu: [cpu] } : {}),
      ...(libc ? { libc: [libc] } : {}),
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(pk).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
lock.packages = sorted;
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} entries`);
