#!/usr/bin/env bash
# The systemd unit: `systemd-analyze verify` reports nothing but the binary not being installed here, and
# `systemd-analyze security --offline=true` rates its exposure 2.0 or less. Prints the exposure.
set -euo pipefail
unit=${1:?usage: check_unit.sh path/to/notifyd.service}

verify=$(systemd-analyze verify "$unit" 2>&1 || true)
other=$(grep -v -e 'is not executable: No such file or directory' -e '^$' <<<"$verify" || true)
if [[ -n $other ]]; then
  echo "systemd-analyze verify $unit reports:" >&2
  echo "$other" >&2
  exit 1
fi

security=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$security")
if [[ -z $exposure ]]; then
  echo "no exposure figure in systemd-analyze security's output:" >&2
  echo "$security" >&2
  exit 1
fi
echo "systemd-analyze security: exposure $exposure (at most 2.0 allowed)"
if ! awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
  grep '✗' <<<"$security" >&2 || true
  exit 1
fi
