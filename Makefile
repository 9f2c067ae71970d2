# minipod build, test and demo. Run `make help` for the targets.
SHELL := /bin/bash
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_B := -trimpath -ldflags '$(LDFLAGS)'
export CGO_ENABLED := 0

# Installation: `make install PREFIX=/usr DESTDIR=/tmp/pkg` for a package root.
PREFIX    ?= /usr/local
DESTDIR   ?=
UNITDIR   ?= /etc/systemd/system
ARCHS     ?= amd64 arm64 arm

.PHONY: help build test test-unit test-e2e bench lint deps demo images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/minipod, bin/minipodctl, bin/minipod-pause and bin/mkimage
	$(GO) build $(GOFLAGS_B) -o $(BIN)/ ./cmd/minipod ./cmd/minipodctl ./cmd/minipod-pause ./cmd/mkimage

test: lint test-unit cross test-e2e ## everything: lint, unit tests, the cross builds, end-to-end tests (root)

test-unit: ## unit tests (no root needed)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/e2e)

test-e2e: ## end-to-end tests against a containerd the harness starts itself (root)
	$(GO) test -count=1 -timeout 30m -v ./test/e2e/

bench: ## benchmarks against a containerd the harness starts (root): table on stdout, JSON in bench.json
	MINIPOD_E2E_NET=$${MINIPOD_E2E_NET:-1} $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/e2e/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

deps: ## install what minipod and its tests need on Debian/Ubuntu (root)
	./test/deps.sh

images: build ## build the busybox test image and the pause image as OCI archives in bin/
	$(BIN)/mkimage busybox -o $(BIN)/busybox-image.tar
	$(BIN)/mkimage pause -pause $(BIN)/minipod-pause -o $(BIN)/pause-image.tar

demo: build images ## run minipod for real on manifests/ (root; starts containerd if none answers)
	./test/demo.sh

install: build ## install binaries, the pause program, the unit and /etc/minipod (PREFIX, DESTDIR, UNITDIR)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/minipod $(DESTDIR)$(PREFIX)/share/minipod/examples
	install -m 0755 $(BIN)/minipod $(BIN)/minipodctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BIN)/minipod-pause $(DESTDIR)$(PREFIX)/lib/minipod/
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

clean: ## remove build output
	rm -rf $(BIN)
