#!/usr/bin/env bash
# Installs every build, test and peer dependency of flowsec from Debian 12's
# archive (apt-get only; nothing is downloaded from anywhere else).
# Idempotent: when every package is already installed it does nothing.
# The README lists why each one is here.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config python3
  clang-format clang-tidy
  # libraries
  libexpected-dev libfmt-dev libpcap-dev libssl-dev libasio-dev libsctp-dev libndpi-dev
  libzmq3-dev libcurl4-openssl-dev zlib1g-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev nlohmann-json3-dev
  # real peers the tests drive
  tshark libfixbuf-tools openssl softflowd nfdump tcpreplay iproute2 prometheus socat curl
  clickhouse-server
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
