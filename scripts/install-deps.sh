#!/usr/bin/env bash
# Installs every Debian package notifyd needs to build, test and benchmark.
# Idempotent; for a fresh Debian 12 (bookworm) machine, run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache lld pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libnghttp2-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  libsqlite3-dev sqlite3 libpq-dev libcli11-dev libsystemd-dev libmimalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-twilio nghttp2-client curl openssl
  systemd  # systemd-analyze, for the unit's checks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all ${#packages[@]} packages present"
