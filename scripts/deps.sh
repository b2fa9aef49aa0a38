#!/bin/sh
# Installs the Debian packages ssl-tools needs to build, test and run its demo,
# but only those that are missing. As root it runs apt-get; otherwise it prints
# the exact command and fails.
set -u
PKGS="build-essential pkg-config libarchive-dev libopenblas-dev libmsgpack-dev check \
libjpeg-dev libpng-dev libjansson-dev mandoc dataset-fashion-mnist python3-msgpack python3-numpy \
libopenmpi-dev openmpi-bin"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: missing Debian packages:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root: apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || { echo "deps: apt-get update failed" >&2; exit 1; }
apt-get install -y -q --no-install-recommends $missing >&2 || { echo "deps: apt-get install failed" >&2; exit 1; }
