#!/usr/bin/env bash
# Runs minipod for real on the example manifests in manifests/ (called by `make demo`, as root).
# When no containerd answers at the default socket, it starts one in the background.
set -euo pipefail
cd "$(dirname "$0")/.."
sock=/run/containerd/containerd.sock

if ! ctr -a "$sock" version >/dev/null 2>&1; then
	echo "no containerd answers at $sock: starting one (log in /var/log/minipod-containerd.log)"
	containerd >>/var/log/minipod-containerd.log 2>&1 &
	for _ in $(seq 1 150); do
		ctr -a "$sock" version >/dev/null 2>&1 && break
		sleep 0.2
	done
	ctr -a "$sock" version >/dev/null
fi

# No registry needed: the example pods use the busybox image built from Debian's busybox-static.
ctr -a "$sock" -n minipod images import bin/busybox-image.tar >/dev/null
echo "minipod is starting on $PWD/manifests; in another shell: bin/minipodctl status -o wide"
exec bin/minipod --manifest-dir "$PWD/manifests" "$@"
