#!/usr/bin/env bash
# Installs everything cnm needs on a fresh Debian 12 machine (as root) and builds it:
# Debian packages (iproute2, nftables + libnftables1, build tools for the native addon and
# better-sqlite3, python3 and perl for container commands and the process shim), npm packages
# (their install step compiles the addon with node-gyp), then dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: run as root (cnm programs network namespaces, links and nftables)" >&2
  exit 1
fi

pkgs=(iproute2 nftables libnftables1 build-essential python3 perl util-linux procps curl ca-certificates openssl)
# etcd-server: the cluster store the overlay tests (95-overlay, store/etcd) start in their own
# namespaces. Its package would start a system etcd; the install below forbids service starts.
pkgs+=(etcd-server)
# iperf3 and sockperf: the load generators of `cnm bench` and its integration test (96-bench).
pkgs+=(iperf3 sockperf)
# dnsperf and aardvark-dns (Podman's resolver, the baseline): bench/dns.
pkgs+=(dnsperf aardvark-dns)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "setup.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  # Packages must not start services (etcd-server would run a system etcd): policy-rc.d's 101
  # tells invoke-rc.d "not allowed", for this install only, unless the machine has its own.
  own_policy=0
  [[ -e /usr/sbin/policy-rc.d ]] && own_policy=1
  if ((own_policy == 0)); then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || rc=$?
  ((own_policy == 0)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || exit "$rc"
fi

if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "setup.sh: cnm needs Node.js 20 or newer on PATH" >&2
  exit 1
fi

# npm ci runs our "install" script (node-gyp rebuild of the addon) and builds better-sqlite3.
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "setup.sh: ready (cnmd: node dist/main/daemon.js, cnm: node dist/main/cli.js)" >&2
