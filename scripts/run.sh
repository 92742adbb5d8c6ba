#!/usr/bin/env bash
# Builds notifyd and runs it in the foreground on the embedded default: SQLite under ./state/ and the
# development configuration config/notifyd.toml (account ACdeadbeef..., listening on 127.0.0.1:8080).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNOTIFYD_TESTS=OFF \
  -DNOTIFYD_BENCH=OFF >/dev/null
ninja -C "$root/build/release" -j"${NOTIFYD_JOBS:-2}" notifyd
exec "$root/build/release/notifyd" --config "$root/config/notifyd.toml" "$@"
