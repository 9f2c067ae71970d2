#!/usr/bin/env bash
# Installs what minipod and its tests need on Debian or Ubuntu. Safe to run again: it installs
# only what is missing. Needs root.
set -euo pipefail

pkgs=(containerd runc containernetworking-plugins iptables iproute2 busybox-static git make ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Go: minipod needs Go >= 1.26.6 (the containerd v2 client requires it). Distribution packages
# are older, so a Go toolchain must already be installed (for example in /usr/local/go).
export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
	echo "Go >= 1.26.6 is required: install it from go.dev/dl into /usr/local/go" >&2
	exit 1
fi
go version
