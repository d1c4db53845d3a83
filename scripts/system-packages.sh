#!/usr/bin/env bash
# Installs the Debian packages some tests use, when they are missing (as root, through apt-get; elsewhere it says
# what is missing and exits 0: the demo and most tests do not need them). The README's set-up command and .ci/run
# both call it, so the list lives here alone:
# - python3-zmq, python3-msgpack: the Python client written from docs/PROTOCOL.md
#   (packages/core/test/PythonClient.integration.test.ts);
# - etcd-server (3.4): the real etcd the discovery tests start (packages/discovery/test/etcdServer.ts);
# - iptables: the network partitions of packages/core/test/Ledger.integration.test.ts (DROP rules inside a network
#   namespace the test creates; Debian's iptables is the nf_tables backend, whose rules are per namespace);
# - protobuf-compiler, libprotobuf-dev: the codegen tests check protoc as well as buf; libprotobuf-dev holds the
#   well-known types (google/protobuf/*.proto), only recommended by protobuf-compiler, so --no-install-recommends
#   would leave them out.
# apt-get update runs once, and only when something is missing.
set -euo pipefail

packages=(python3-zmq python3-msgpack etcd-server iptables protobuf-compiler libprotobuf-dev)

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: not a Debian system; install ${packages[*]} (or their equivalents) for the tests that use them"
  exit 0
fi
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-packages: not root, cannot install ${missing[*]}; the tests that need them will fail or skip"
  exit 0
fi
echo "system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
