#!/usr/bin/env bash
# Install the controller's Debian packages (tools/host-packages.txt), once per change of that list.
# Package services (PostgreSQL, MariaDB) are not started: the tests run private servers of their own.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
list="$here/host-packages.txt"
stamp="${1:-$here/../.cache/host-packages.stamp}"
want="$(sha256sum "$list" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "host packages up to date"
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
mapfile -t packages < <(sed -e 's/#.*//' -e '/^\s*$/d' "$list")
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  # policy-rc.d 101 = "do not start services from maintainer scripts"; removed again afterwards.
  policy=/usr/sbin/policy-rc.d
  had_policy=0
  [ -e "$policy" ] && had_policy=1
  if [ "$had_policy" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p "$(dirname "$stamp")"
echo "$want" >"$stamp"
echo "host packages installed"
