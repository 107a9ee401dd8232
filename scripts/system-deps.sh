#!/usr/bin/env bash
# Installs the Debian packages govnet's demo and tests use (real agents, TSDBs, sshd).
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
PKGS=(
  snmp snmpd                    # net-snmp tools (snmpbulkwalk, snmptrap) and a real agent
  prometheus                    # Prometheus 2.42 + promtool: scrapes /metrics in tests
  victoria-metrics              # InfluxDB v2 write API for the durable export tests
  prometheus-snmp-exporter      # the side-by-side performance anchor in bench/
  iproute2 nftables             # network namespaces, veth pairs, packet loss
  openssh-client openssh-server
  procps
  rsyslog bsdutils              # rsyslogd: syslog ingest anchor in bench/; logger sends real syslog
  prometheus-alertmanager       # Alertmanager 0.25: receives alerts forwarded by govnet (tests)
  python3-venv                  # install.sh of the offline bundle creates a virtualenv
  gcc python3-dev               # make bootstrap compiles the syslog parser (mypyc); optional
  libssl-dev                    # ... and the log store's hashing (logstore/digest.c, OpenSSL); optional
  systemd logrotate             # systemd-analyze verify / logrotate -d check deploy/ files (tests)
  postgresql-15                 # PostgreSQL 15 primary + hot standby and pg_dump files (DB pair, backup tests)
  poppler-utils                 # pdftoppm: the monthly report PDF rendered to PNG in tests
  faketime                      # scripts/time-independence.sh: the alert and API suites at other dates
  chromium fonts-wqy-microhei   # headless browser tests of the web console (CJK font for screenshots)
  nginx dnsmasq-base            # service checks: a real HTTPS server and a real DNS server on loopback
  prometheus-blackbox-exporter  # service checks: the side-by-side anchor (tests and bench/)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Packages start their own daemons under systemd elsewhere; here nothing is started for us.
apt-get install -y -q --no-install-recommends "${missing[@]}"
