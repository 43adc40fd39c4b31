#!/bin/sh
# deps.sh: installs the Debian packages mbrld needs that are missing.
# Usage: tools/deps.sh PKG...   As root, apt-get installs them (updating the
# package lists first when there are none, or when an install fails);
# otherwise it prints the one apt-get line to run and fails.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages. Run as root:"
    echo "  apt-get install -y$missing"
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q || exit 1; fi
apt-get install -y --no-install-recommends -q $missing && exit 0
apt-get update -q && apt-get install -y --no-install-recommends -q $missing
