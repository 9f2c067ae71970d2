#!/usr/bin/env bash
# Installs what minipod and its tests need on Debian or Ubuntu: the packages below and, when no Go
# new enough for go.mod is on the machine, Go itself. Safe to run again: it installs only what is
# missing. Needs root.
#
#   test/deps.sh       everything
#   test/deps.sh go    only the Go step
#
# Go comes from the Go module proxy, which serves each Go release as the module
# golang.org/toolchain: the zip is fetched through GOPROXY (default https://proxy.golang.org),
# refused unless its SHA-256 is the one pinned below, and unpacked into GO_INSTALL_DIR (default
# /usr/local/go, the directory .ci/run and the Makefile add to PATH). The verified zip stays in
# GO_TOOLCHAIN_CACHE (default /var/cache/minipod/go-toolchain) for the next run; it is checked
# again each time it is used. A Go already on PATH, or in GO_INSTALL_DIR, that is new enough is
# used as it is.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
steps=${1:-all}
case $steps in
all | go) ;;
*)
	echo "usage: $0 [go]" >&2
	exit 2
	;;
esac

# The Go release fetched when none is found, and the SHA-256 of its module zip for each
# architecture (golang.org/toolchain@v0.0.1-go1.26.8.linux-<arch>). Pinned from
# proxy.golang.org on 6 Dec; the zips' go.sum hashes, which `go mod download` verified against
# sum.golang.org, are amd64 h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM= and arm64
# h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc=. linux-armv6l (armhf, armel) is not pinned:
# neither the proxy nor the checksum database served it when these were taken.
go_release=go1.26.8
declare -A go_zip_sha256=(
	[amd64]=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
	[arm64]=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
)

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

die() {
	echo "deps: $*" >&2
	exit 1
}

# The packages. curl and unzip fetch and unpack Go (a minimal Debian has neither).
# docker-registry and apache2-utils (htpasswd) serve the pull tests a registry on loopback;
# vim-tiny, nano and tmux (a real terminal for them) edit manifests in the editors test.
# gcc and libc6-dev: the unit tests run with -race, which needs cgo and a C compiler.
# mmdebstrap and systemd-container (systemd-nspawn): the .deb test boots a Debian 12 of its own
# and installs the package there under systemd as PID 1.
apt_step() {
	local pkgs=(containerd runc containernetworking-plugins iptables iproute2 busybox-static git make ca-certificates
		curl unzip docker-registry apache2-utils systemd vim-tiny nano tmux gcc libc6-dev mmdebstrap systemd-container)
	local missing=() p
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
}

# go_version GO prints the version the go binary GO reports (1.26.8; 1.27 for go1.27rc1), or
# nothing when it does not run. GOTOOLCHAIN=local: never let it switch to another toolchain.
go_version() {
	local out
	out=$(cd / && GOTOOLCHAIN=local "$1" version 2>/dev/null) || return 0
	if [[ $out =~ ^go\ version\ go([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then
		echo "${BASH_REMATCH[1]}"
	fi
}

# version_ge A B: whether version A (1.26.8) is at least B.
version_ge() {
	local -a a b
	local i
	IFS=. read -ra a <<<"$1"
	IFS=. read -ra b <<<"$2"
	for i in 0 1 2; do
		if ((${a[i]:-0} != ${b[i]:-0})); then
			((${a[i]:-0} > ${b[i]:-0}))
			return
		fi
	done
}

# go_good GO: whether GO is a go binary at least as new as go.mod needs ($need).
go_good() {
	local v
	v=$(go_version "$1")
	[[ -n $v ]] && version_ge "$v" "$need"
}

# go_mod_needs prints the Go version go.mod needs: the larger of its go and toolchain lines.
go_mod_needs() {
	local v t
	v=$(sed -n 's/^go[[:space:]]\{1,\}\([0-9][0-9.]*\).*/\1/p' "$repo/go.mod")
	t=$(sed -n 's/^toolchain[[:space:]]\{1,\}go\([0-9][0-9.]*\).*/\1/p' "$repo/go.mod")
	[[ -n $v ]] || die "no go line in $repo/go.mod"
	if [[ -n $t ]] && ! version_ge "$v" "$t"; then v=$t; fi
	echo "$v"
}

# case_encode prints a module path or version as proxy URLs spell it: each capital letter as "!"
# and the letter in lower case.
case_encode() {
	# shellcheck disable=SC2001 # ${var//} cannot lower the case of what it matched
	LC_ALL=C sed 's/[A-Z]/!\L&/g' <<<"$1"
}

# fetch_go sets go_zip to the verified zip of $go_release for this machine: the cached one when
# its SHA-256 is the pinned one, otherwise one downloaded through GOPROXY.
fetch_go() {
	local arch want cache mod ver zip tmp url got base entry
	case $(dpkg --print-architecture 2>/dev/null || uname -m) in
	amd64 | x86_64) arch=amd64 ;;
	arm64 | aarch64) arch=arm64 ;;
	armhf | armel | armv6l | armv7l) arch=armv6l ;;
	*) die "no Go toolchain for $(uname -m) here: install Go >= $need into $dir yourself" ;;
	esac
	want=${go_zip_sha256[$arch]:-}
	[[ -n $want ]] || die "no SHA-256 pinned for Go $go_release on linux-$arch in test/deps.sh: install Go >= $need into $dir yourself (go.dev/dl)"
	mod=golang.org/toolchain
	ver=v0.0.1-$go_release.linux-$arch
	cache=${GO_TOOLCHAIN_CACHE:-/var/cache/minipod/go-toolchain}
	zip=$cache/$ver.zip
	mkdir -p "$cache"
	if [[ -f $zip ]]; then
		if [[ $(sha256sum "$zip" | cut -d' ' -f1) == "$want" ]]; then
			echo "Go $go_release: using $zip (SHA-256 checked)"
			go_zip=$zip
			return
		fi
		echo "deps: $zip does not have the pinned SHA-256: removing it and fetching it again" >&2
		rm -f "$zip"
	fi
	command -v curl >/dev/null || die "curl is needed to fetch Go (apt-get install curl)"

	# GOPROXY is a list of proxies separated by "," or "|"; "direct" cannot serve a toolchain and
	# "off" ends the list. Module paths and versions in proxy URLs are case-encoded (A -> !a).
	local -a bases=()
	IFS=',|' read -ra entries <<<"${GOPROXY:-https://proxy.golang.org}"
	for entry in "${entries[@]}"; do
		case $entry in
		off) break ;;
		direct | noproxy | "") ;;
		*://*) bases+=("${entry%/}") ;;
		*) bases+=("https://${entry%/}") ;;
		esac
	done
	((${#bases[@]})) || die "GOPROXY=${GOPROXY:-} names no proxy to fetch Go from: set GOPROXY=https://proxy.golang.org or install Go >= $need into $dir yourself"

	tmp=$(mktemp "$cache/.$ver.zip.XXXXXX")
	cleanup+=("$tmp")
	got=
	local progress=(-sS)
	[[ -t 2 ]] && progress=(--progress-bar)
	for base in "${bases[@]}"; do
		url=$base/$(case_encode "$mod")/@v/$(case_encode "$ver").zip
		echo "Go $go_release: fetching $url"
		if curl -fL --retry 3 --connect-timeout 30 "${progress[@]}" -o "$tmp" "$url"; then
			got=$url
			break
		fi
		echo "deps: could not fetch $url" >&2
	done
	[[ -n $got ]] || die "could not fetch Go $go_release through GOPROXY=${GOPROXY:-https://proxy.golang.org}"
	local have
	have=$(sha256sum "$tmp" | cut -d' ' -f1)
	if [[ $have != "$want" ]]; then
		die "refusing $got: its SHA-256 is $have, but test/deps.sh pins $want for Go $go_release on linux-$arch; nothing was installed"
	fi
	chmod 0644 "$tmp"
	mv -f "$tmp" "$zip"
	echo "Go $go_release: SHA-256 checked, kept in $zip"
	go_zip=$zip
}

# check_install_dir dies unless $dir can take the new Go: it is absent, empty, or a Go
# installation (which install_go replaces). It writes nothing.
check_install_dir() {
	[[ ! -e $dir || -d $dir ]] || die "$dir is not a directory"
	if [[ -d $dir && -n $(find "$dir" -mindepth 1 -maxdepth 1 ! -name '.minipod-go-*' -print -quit) ]]; then
		[[ -f $dir/VERSION && -f $dir/bin/go && $(head -c 2 "$dir/VERSION") == go ]] ||
			die "$dir is not empty and holds no Go installation: empty it, or name another directory with GO_INSTALL_DIR"
		echo "Go $go_release: will replace $(head -n 1 "$dir/VERSION") in $dir"
	fi
	command -v unzip >/dev/null || die "unzip is needed to unpack Go (apt-get install unzip)"
}

# install_go ZIP unpacks the toolchain zip into $dir, replacing what check_install_dir found
# there. It unpacks into a directory inside $dir and moves the files into place only once the
# whole zip is out, so it never writes beside $dir (which may be a mount point).
install_go() {
	local zip=$1 stage
	mkdir -p "$dir"
	rm -rf "$dir"/.minipod-go-* # left by an interrupted run
	stage=$(mktemp -d "$dir/.minipod-go-XXXXXX")
	cleanup+=("$stage")
	unzip -q "$zip" "golang.org/toolchain@v0.0.1-$go_release.linux-*" -d "$stage"
	local top=("$stage"/golang.org/toolchain@*)
	if ((${#top[@]} != 1)) || [[ ! -f ${top[0]}/bin/go ]]; then
		die "$zip does not hold a Go toolchain"
	fi
	# Zip entries need not keep their modes: the commands must be executable.
	chmod 0755 "${top[0]}"/bin/* "${top[0]}"/pkg/tool/*/*
	find "$dir" -mindepth 1 -maxdepth 1 ! -path "$stage" -exec rm -rf {} +
	mv "${top[0]}"/* "$dir"/
	rm -rf "$stage"
	echo "Go $go_release: installed in $dir"
}

# go_step makes sure the first go on PATH, after the directories PATH already has and then
# $dir/bin (the order .ci/run and the Makefile use), is at least as new as go.mod needs.
go_step() {
	dir=${GO_INSTALL_DIR:-/usr/local/go}
	[[ $dir == /* ]] || die "GO_INSTALL_DIR must be an absolute path, not $dir"
	dir=${dir%/}
	[[ -n $dir ]] || die "GO_INSTALL_DIR cannot be /"
	need=$(go_mod_needs)
	export PATH=$PATH:$dir/bin
	local go
	go=$(command -v go || true)
	if [[ -n $go ]] && go_good "$go"; then
		GOTOOLCHAIN=local "$go" version
		return
	fi
	if ! go_good "$dir/bin/go"; then
		version_ge "${go_release#go}" "$need" ||
			die "go.mod needs Go >= $need, newer than the $go_release that test/deps.sh pins: update go_release and its hashes there"
		if [[ -n $go && $go != "$dir/bin/go" ]]; then
			local v
			v=$(go_version "$go")
			echo "Go: $go is ${v:+Go }${v:-no working go}, older than the $need go.mod needs: installing $go_release in $dir"
		else
			echo "Go: no Go >= $need found: installing $go_release in $dir"
		fi
		check_install_dir
		fetch_go
		install_go "$go_zip"
		go_good "$dir/bin/go" || die "the Go unpacked in $dir does not run"
	fi
	hash -r
	go=$(command -v go)
	go_good "$go" || die "$go ($(go_version "$go")) comes before $dir/bin on PATH and is older than the $need go.mod needs: remove it, or put $dir/bin first on PATH"
	GOTOOLCHAIN=local "$go" version
}

if [[ $steps == all ]]; then
	apt_step
fi
go_step
