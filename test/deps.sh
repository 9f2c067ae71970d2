#!/usr/bin/env bash
# Installs what minipod and its tests need on Debian or Ubuntu. Safe to run again: it installs
# only what is missing. Needs root.
set -euo pipefail

# docker-registry and apache2-utils (htpasswd) serve the pull tests a registry on loopback;
# vim-tiny, nano and tmux (a real terminal for them) edit manifests in the editors test.
# gcc and libc6-dev: the unit tests run with -race, which needs cgo and a C compiler.
pkgs=(containerd runc containernetworking-plugins iptables iproute2 busybox-static git make ca-certificates
	docker-registry apache2-utils systemd vim-tiny nano tmux gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	# The package starts a registry on port 5000 for everyone; the tests run their own.
	if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
		systemctl disable --now docker-registry >/dev/null 2>&1 || true
	fi
fi

# Go: minipod needs Go >= 1.26.6 (the containerd v2 client requires it). Distribution packages
# are older, so a Go toolchain must already be installed (for example in /usr/local/go).
export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
	echo "Go >= 1.26.6 is required: install it from go.dev/dl into /usr/local/go" >&2
	exit 1
fi
go version
