# minipod build, test and demo. Run `make help` for the targets.
SHELL := /bin/bash
GO        ?= go
# With no Go new enough on PATH, test/deps.sh installs one in GO_INSTALL_DIR; the recipes look
# there after PATH (as .ci/run does), so `make deps test` works on a machine that had no Go.
export GO_INSTALL_DIR ?= /usr/local/go
export PATH := $(PATH):$(GO_INSTALL_DIR)/bin
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_B := -trimpath -ldflags '$(LDFLAGS)'
# Release binaries are static; only test-unit turns cgo on, because -race needs it.
export CGO_ENABLED := 0

# Installation: `make install PREFIX=/usr DESTDIR=/tmp/pkg` for a package root.
PREFIX    ?= /usr/local
DESTDIR   ?=
UNITDIR   ?= /etc/systemd/system
ARCHS     ?= amd64 arm64 arm

.PHONY: help build test test-unit test-e2e conformance bench lint deps demo images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/minipod, bin/minipodctl, bin/minipod-pause and bin/mkimage
	$(GO) build $(GOFLAGS_B) -o $(BIN)/ ./cmd/minipod ./cmd/minipodctl ./cmd/minipod-pause ./cmd/mkimage

test: lint test-unit cross test-e2e ## everything: lint, unit tests, the cross builds, end-to-end tests (root)

test-unit: export CGO_ENABLED := 1
test-unit: ## unit tests under the race detector (no root needed; -race needs cgo and gcc)
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

test-e2e: ## end-to-end tests against a containerd the harness starts itself (root)
	$(GO) test -count=1 -timeout 45m -v ./test/e2e/

conformance: ## the kubelet's node conformance scenarios ported here, one daemon (root; part of test-e2e)
	$(GO) test -count=1 -timeout 30m -v -run '^TestConformance(Doc|BackoffCap)?$$' ./test/e2e/

bench: ## benchmarks against a containerd the harness starts (root): table on stdout, JSON in bench.json
	MINIPOD_E2E_NET=$${MINIPOD_E2E_NET:-1} $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/e2e/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

deps: ## install what minipod and its tests need on Debian/Ubuntu, Go included (root)
	./test/deps.sh

images: build ## build the busybox test image and the pause image as OCI archives in bin/
	$(BIN)/mkimage busybox -o $(BIN)/busybox-image.tar
	$(BIN)/mkimage pause -pause $(BIN)/minipod-pause -o $(BIN)/pause-image.tar

demo: build images ## run minipod for real on manifests/ (root; starts containerd if none answers)
	./test/demo.sh

install: build ## install binaries, the pause program, the unit and /etc/minipod (PREFIX, DESTDIR, UNITDIR)
	$(MAKE) --no-print-directory install-files SRC=$(BIN)

SRC ?= $(BIN)
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/minipod $(DESTDIR)$(PREFIX)/share/minipod/examples
	install -m 0755 $(SRC)/minipod $(SRC)/minipodctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(SRC)/minipod-pause $(DESTDIR)$(PREFIX)/lib/minipod/
	install -m 0644 manifests/*.yaml $(DESTDIR)$(PREFIX)/share/minipod/examples/
	install -d -m 0755 $(DESTDIR)/etc/minipod/manifests $(DESTDIR)$(UNITDIR)
	install -d -m 0700 $(DESTDIR)/etc/minipod/secrets
	install -d -m 0755 $(DESTDIR)/etc/minipod/configmaps
	sed 's|^ExecStart=/usr/local/bin/minipod|ExecStart=$(PREFIX)/bin/minipod|' systemd/minipod.service > $(DESTDIR)$(UNITDIR)/minipod.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/minipod.service

uninstall: ## remove what install put in place (manifests, configMaps and secrets stay)
	rm -f $(DESTDIR)$(PREFIX)/bin/minipod $(DESTDIR)$(PREFIX)/bin/minipodctl $(DESTDIR)$(UNITDIR)/minipod.service
	rm -rf $(DESTDIR)$(PREFIX)/lib/minipod $(DESTDIR)$(PREFIX)/share/minipod
	-rmdir $(DESTDIR)/etc/minipod/manifests $(DESTDIR)/etc/minipod/configmaps $(DESTDIR)/etc/minipod/secrets $(DESTDIR)/etc/minipod 2>/dev/null

cross: ## build every binary for linux/amd64, arm64 and arm/v7 into bin/<arch>/
	for a in $(ARCHS); do GOOS=linux GOARCH=$$a GOARM=7 $(GO) build $(GOFLAGS_B) -o $(BIN)/$$a/ ./cmd/minipod ./cmd/minipodctl ./cmd/minipod-pause ./cmd/mkimage || exit 1; done

deb: cross ## a .deb for each of ARCHS in bin/ (dpkg-deb): installs, enables, purges cleanly
	for a in $(ARCHS); do \
		d=$(BIN)/deb-$$a; rm -rf $$d; \
		$(MAKE) --no-print-directory install-files SRC=$(BIN)/$$a DESTDIR=$$d PREFIX=/usr UNITDIR=/lib/systemd/system || exit 1; \
		install -d $$d/DEBIAN; install -m 0755 systemd/deb/postinst systemd/deb/prerm systemd/deb/postrm $$d/DEBIAN/; \
		debarch=$$a; [ $$a = arm ] && debarch=armhf; \
		printf 'Package: minipod\nVersion: %s\nArchitecture: %s\nMaintainer: minipod developers <dev@minipod.local>\nDepends: containerd, runc, containernetworking-plugins, iptables\nSection: admin\nPriority: optional\nDescription: standalone mini-kubelet: runs Kubernetes Pod manifests on containerd\n' \
			"$$(echo $(VERSION) | sed 's/^v//; s/[^0-9A-Za-z.+~-]/./g; s/^[^0-9]/0.0.0~&/')" $$debarch > $$d/DEBIAN/control; \
		dpkg-deb --root-owner-group --build $$d $(BIN)/minipod_$$debarch.deb >/dev/null || exit 1; \
	done

clean: ## remove build output
	rm -rf $(BIN)
