#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing Sluice need.
# Idempotent and quiet when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev node-llhttp libssl-dev nlohmann-json3-dev catch2 libc-ares-dev libpcre2-dev
  clang libclang-rt-14-dev
  python3 python3-pytest python3-pytest-xdist python3-pytest-timeout curl openssl procps nginx-light
  prometheus  # promtool, which checks the /metrics page in the integration tests
  iproute2 nftables  # the interception test: network namespaces, veth pairs, a redirect rule
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx-light haproxy wrk nghttp2-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "bootstrap: installing ${missing[*]}" >&2
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
