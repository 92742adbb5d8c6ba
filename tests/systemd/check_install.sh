#!/usr/bin/env bash
# `cmake --install` into a staging root (DESTDIR) puts the binary, the unit, the example configuration, the
# credentials directory and the docs in place; the installed unit names the installed binary, which runs; the example configuration
# passes --check-config once its store path is writable here.
set -euo pipefail
build=${1:?usage: check_install.sh BUILD_DIR}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage cmake --install "$build" --prefix /usr >/dev/null

fail() { echo "check_install: $*" >&2; exit 1; }
for f in usr/bin/notifyd usr/lib/systemd/system/notifyd.service etc/notifyd/notifyd.example.toml \
         usr/share/doc/notifyd/README.md; do
  [[ -f $stage/$f ]] || fail "missing $f; installed: $(cd "$stage" && find . -type f | tr '\n' ' ')"
done
unit=$stage/usr/lib/systemd/system/notifyd.service
grep -qx 'ExecStart=/usr/bin/notifyd --config /etc/notifyd/notifyd.toml' "$unit" || fail "ExecStart: $(grep ^ExecStart "$unit")"
grep -qx 'Type=notify' "$unit" || fail "Type= is not notify"
grep -qx 'LoadCredential=notifyd:/etc/notifyd/credentials' "$unit" || fail "LoadCredential=: $(grep ^LoadCredential "$unit")"
[[ -d $stage/etc/notifyd/credentials && $(stat -c %a "$stage/etc/notifyd/credentials") == 700 ]] ||
  fail "etc/notifyd/credentials is not a 0700 directory"
"$stage/usr/bin/notifyd" --version | grep -q notifyd || fail "the installed binary does not run"

sed "s|/var/lib/notifyd/notifyd.db|$stage/notifyd.db|" "$stage/etc/notifyd/notifyd.example.toml" >"$stage/check.toml"
"$stage/usr/bin/notifyd" --check-config --config "$stage/check.toml" >/dev/null ||
  fail "the example configuration does not pass --check-config"
echo "check_install: binary, unit, example configuration and docs in place"
