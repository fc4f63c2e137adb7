#!/usr/bin/env bash
# Install the Debian packages kontain's tests (or benchmarks) need, if any is missing.
# Usage: tools/install-deps.sh test|bench
set -euo pipefail
case "${1:-test}" in
  test)  pkgs=(gcc make binutils musl-tools busybox-static python3-venv golang-go sqlite3 libpython3.11-testsuite gdb crun runc podman containerd debootstrap iptables) ;;  # (iptables: podman -p, netavark's port forwarding)
  bench) pkgs=(qemu-user hyperfine runsc) ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
