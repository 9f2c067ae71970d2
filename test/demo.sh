#!/usr/bin/env bash
# Runs minipod for real on the example manifests in manifests/ (called by `make demo`, as root).
# No registry and no running containerd are needed: minipod uses the containerd at
# /run/containerd/containerd.sock when one answers and otherwise starts its own, and it
# imports the busybox image the examples use from its image directory.
set -euo pipefail
cd "$(dirname "$0")/.."
state=/var/lib/minipod
mkdir -p "$state/images"
cp bin/busybox-image.tar "$state/images/minipod-busybox.tar"
echo "minipod is starting on $PWD/manifests; in another shell: bin/minipodctl status -o wide"
exec bin/minipod --state-dir "$state" --manifest-dir "$PWD/manifests" "$@"
