#!/usr/bin/env bash
# Builds notifyd and runs every test twice: a -Werror optimised build, then an AddressSanitizer+UBSan
# build. Installs what it needs first (Debian 12, root). Prints ctest's summary for each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

jobs=${NOTIFYD_JOBS:-2}
configure_and_build() {
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
  ninja -C "$dir" -j"$jobs"
}

echo "== systemd unit"
bash "$root/tests/systemd/check_unit.sh" "$root/systemd/notifyd.service"

echo "== -Werror build (RelWithDebInfo)"
configure_and_build "$root/build/ci" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNOTIFYD_WERROR=ON
(cd "$root/build/ci" && ctest --output-on-failure -j2 --timeout 900)

echo "== AddressSanitizer + UBSan build"
configure_and_build "$root/build/asan" -DCMAKE_BUILD_TYPE=Debug -DNOTIFYD_WERROR=ON -DNOTIFYD_SANITIZE=ON \
  -DNOTIFYD_BENCH=OFF
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$root/build/asan" && ctest --output-on-failure -j2 --timeout 900)
