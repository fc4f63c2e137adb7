#!/bin/sh
# Install kontain on this Kubernetes node, from the DaemonSet (daemonset.yaml), which runs
# this script in the node's namespaces (nsenter -t 1): crun and a Python virtual
# environment with kontain in /opt/kontain, containerd's CRI runtime `kontain` (the
# RuntimeClass handler: containerd.toml, beside this script), a containerd restart, and the node label the RuntimeClass selects.
#   KONTAIN_PACKAGE  what pip installs (a wheel's path or URL; default: kontain)
#   NODE_NAME        this node's name (the DaemonSet passes it)
# `install.sh --configure FILE` only adds the runtime to the containerd configuration FILE
# (tests/oci/test_containerd.py checks what containerd makes of it).
set -eu
CONFIG=/etc/containerd/config.toml
BINARY=/opt/kontain/bin/krun  # (krun-native instead when this node has a C compiler: below)

# Add the runtime `kontain` to the configuration $1 if it has none; say whether it did.
configure() {
  if grep -q 'runtimes.kontain\]' "$1"; then
    return 1
  fi
  if ! grep -q 'runtimes.runc\]' "$1"; then  # (defining any runtime drops the implicit runc: CRI would not load)
    printf '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n' >> "$1"
  fi
  { echo; grep -v '^#' "$(dirname "$0")/containerd.toml" | sed "s#/opt/kontain/bin/krun\"#$BINARY\"#"; } >> "$1"
}

if [ "${1:-}" = --configure ]; then
  configure "$2" || true
  exit 0
fi
[ -e /dev/kvm ] || { echo "kontain: /dev/kvm is missing on $NODE_NAME: kontain needs KVM (kvm_intel, kvm_amd or kvm_pvm)" >&2; exit 1; }
if ! command -v crun >/dev/null || ! command -v python3 >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crun python3-venv >/dev/null
fi
[ -x /opt/kontain/bin/krun ] || python3 -m venv /opt/kontain
/opt/kontain/bin/pip install -q --upgrade "${KONTAIN_PACKAGE:-kontain}"
# krun-native starts containers faster (no Python start for the verbs crun answers);
# optional: without a C compiler containerd runs krun itself
if /opt/kontain/bin/krun launcher >/dev/null 2>&1; then
  BINARY=/opt/kontain/bin/krun-native
fi
mkdir -p /etc/containerd
[ -s "$CONFIG" ] || containerd config default > "$CONFIG"
if configure "$CONFIG"; then
  systemctl restart containerd
fi
/opt/kontain/bin/krun features >/dev/null
echo "kontain: installed on $NODE_NAME"
