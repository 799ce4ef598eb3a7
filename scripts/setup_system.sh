#!/usr/bin/env bash
# System packages for hazmon's embedded stack on Debian/Ubuntu (idempotent; safe to run twice).
#
# Installs, only when missing:
#   mosquitto          MQTT broker binary (the stack runs its own instance with its own config)
#   mosquitto-clients  mosquitto_pub / mosquitto_sub, handy for poking the broker by hand
#   postgresql         PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin) and the
#                      'postgres' system user the private cluster runs as when we are root
#   openssl            the SMS-signing tests compare against the openssl command line
#   prometheus         for promtool only: tests/test_prometheus_rules.py runs `promtool check
#                      rules` / `promtool test rules` on deploy/prometheus (its daemon is not started)
#   python3-venv       only when python3 is Debian's own and cannot create a venv yet
#   fonts-wqy-microhei a CJK font (TrueType outlines): the 通报's PDF embeds it, its charts use it
#   poppler-utils      pdftotext / pdftoppm / pdffonts: the 通报 tests read the PDF back (alerting/bulletin)
# Tansu (Kafka protocol) and moto (S3) come from PyPI, not apt.
#
# Debian's own services are NOT started: a temporary policy-rc.d forbids service starts during
# the install, and postgresql-common is told not to create its default cluster (only when this
# script is the one installing it). hazmon starts private instances in its run directory.
#
# Usage: scripts/setup_system.sh [--dry-run]     (sudo is used when not root)
set -euo pipefail

DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1

say() { printf 'setup_system: %s\n' "$*"; }

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  say "not root and no sudo: run this script as root"; exit 1
fi

run() {
  say "+ ${SUDO[*]:+${SUDO[*]} }$*"
  if [[ $DRY_RUN -eq 0 ]]; then "${SUDO[@]}" "$@"; fi
}

if ! command -v apt-get >/dev/null 2>&1; then
  say "apt-get not found: this script supports Debian/Ubuntu only."
  say "Elsewhere install mosquitto (>= 2.0) and PostgreSQL server binaries (>= 13) by hand."
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
have_mosquitto() { command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]]; }
have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

if have_mosquitto; then say "mosquitto: present ($(command -v mosquitto || echo /usr/sbin/mosquitto))"; else missing+=(mosquitto); fi
if command -v mosquitto_pub >/dev/null 2>&1; then say "mosquitto-clients: present"; else missing+=(mosquitto-clients); fi
# openssl: the SMS-signing tests check our signatures against the openssl command line
if command -v openssl >/dev/null 2>&1; then say "openssl: present"; else missing+=(openssl); fi
# promtool (Debian's prometheus package): the alert rules' unit tests (deploy/prometheus/tests)
if command -v promtool >/dev/null 2>&1; then say "promtool: present ($(command -v promtool))"; else missing+=(prometheus); fi
# the official 通报 (alerting/bulletin): a CJK font for its PDF and charts, poppler to read the PDF back
if [[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]]; then say "fonts-wqy-microhei: present"; else missing+=(fonts-wqy-microhei); fi
if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then say "poppler-utils: present"; else missing+=(poppler-utils); fi
if have_pg_server && getent passwd postgres >/dev/null; then
  say "postgresql server: present ($(compgen -G '/usr/lib/postgresql/*/bin' | tr '\n' ' '))"
else
  missing+=(postgresql)
fi
if [[ "$(command -v python3 || true)" == /usr/bin/python3 ]] && installed python3 && ! installed python3-venv \
   && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

# for checking the install path without installing: --dry-run with HAZMON_SETUP_ASSUME_MISSING="pkg ..."
if [[ $DRY_RUN -eq 1 && -n "${HAZMON_SETUP_ASSUME_MISSING:-}" ]]; then
  read -r -a missing <<<"$HAZMON_SETUP_ASSUME_MISSING"
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  say "nothing to install"
  exit 0
fi
say "will install: ${missing[*]}"

# keep Debian's services from starting (restored afterwards if we created it)
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $POLICY ]]; then
  say "temporarily forbidding service starts ($POLICY exits 101)"
  if [[ $DRY_RUN -eq 0 ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
  fi
  created_policy=1
fi
cleanup() { if [[ $created_policy -eq 1 && $DRY_RUN -eq 0 ]]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

# no default 'main' cluster: hazmon uses the configured server or its own private cluster
if [[ " ${missing[*]} " == *" postgresql "* ]] && ! installed postgresql-common \
   && [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
  say "postgresql-common: create_main_cluster = false"
  if [[ $DRY_RUN -eq 0 ]]; then
    "${SUDO[@]}" mkdir -p /etc/postgresql-common
    printf 'create_main_cluster = false\n' | "${SUDO[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
run apt-get update
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

if [[ $DRY_RUN -eq 0 ]]; then
  have_mosquitto || { say "mosquitto still missing after install"; exit 1; }
  have_pg_server || { say "PostgreSQL server binaries still missing after install"; exit 1; }
  if [[ " ${missing[*]} " == *" prometheus "* ]] && ! command -v promtool >/dev/null 2>&1; then
    say "promtool still missing after installing prometheus"; exit 1
  fi
fi
say "done"
