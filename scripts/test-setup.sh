#!/usr/bin/env bash
# Prepares this machine for the whole test suite (`npm run test:setup`; .ci/run calls it too): Debian's nftables,
# iptables, ipset, iproute2, python3, haproxy, openssl, chromium and prometheus, prometheus-alertmanager,
# prometheus-blackbox-exporter (the drills' comparison) when missing, and a running PostgreSQL with a `root` role
# (peer authentication over the unix socket) for the store and server suites. Idempotent: installs only what is
# missing, starts the cluster only when it is down, creates the role only when missing. Needs root (apt-get).
# Without it `npm test` still runs: the kernel, agent and lab suites and the PostgreSQL half skip and say why
# (except under CI=true, where a missing PostgreSQL fails the suite).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "test:setup: needs root (it installs Debian packages and starts PostgreSQL); run it with sudo" >&2
  exit 1
fi

need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
# The kube-proxy entry of the real-world corpus names nfacct objects, which must exist for the kernel to load it.
command -v nfacct >/dev/null 2>&1 || need+=(nfacct)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The dashboard's browser tests (test/web) drive Debian's chromium with playwright-core, which downloads no browser.
[ -x /usr/bin/chromium ] || need+=(chromium)
# The drills' side by side (`rampart drill run --compare prometheus`, bench/drill-bench.mjs --compare): run by the
# drill inside the lab's namespaces; their own services are not used.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need+=(prometheus-blackbox-exporter)
if [ "${#need[@]}" -gt 0 ]; then
  echo "ci: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# PostgreSQL for the store suite (test/store runs against both SQLite and a real PostgreSQL; in CI a missing server
# fails the suite instead of skipping it). Idempotent: installs only when the server binaries are missing, starts
# the cluster only when it is down, creates the `root` superuser (peer auth over the unix socket) only when missing.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "ci: installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql
fi
if ! pg_isready -q -h /var/run/postgresql 2>/dev/null; then
  started=0
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver cluster _port status _rest; do
      if [ "$status" = down ]; then
        echo "ci: starting PostgreSQL cluster $ver/$cluster"
        pg_ctlcluster "$ver" "$cluster" start && started=1
      else
        started=1
      fi
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
  fi
  if [ "$started" = 0 ] && command -v pg_createcluster >/dev/null 2>&1 && [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
    ver="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    echo "ci: creating PostgreSQL cluster $ver/main"
    pg_createcluster "$ver" main --start && started=1
  fi
  if [ "$started" = 0 ]; then
    echo "ci: starting PostgreSQL via service"
    service postgresql start || true
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h /var/run/postgresql && break
    sleep 0.5
  done
  pg_isready -h /var/run/postgresql
fi
if [ "$(su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"")" != 1 ]; then
  echo "ci: creating PostgreSQL superuser root"
  su postgres -c "psql -q -c 'CREATE ROLE root SUPERUSER LOGIN'"
fi

