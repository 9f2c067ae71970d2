# minipod build, test and demo. Run `make help` for the targets.
SHELL := /bin/bash
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_B := -trimpath -ldflags '$(LDFLAGS)'
export CGO_ENABLED := 0

.PHONY: help build test test-unit test-e2e lint deps demo images clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/minipod, bin/minipodctl, bin/minipod-pause and bin/mkimage
	$(GO) build $(GOFLAGS_B) -o $(BIN)/ ./cmd/minipod ./cmd/minipodctl ./cmd/minipod-pause ./cmd/mkimage

test: lint test-unit test-e2e ## everything: lint, unit and end-to-end tests (end-to-end needs root)

test-unit: ## unit tests (no root needed)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /test/e2e)

test-e2e: ## end-to-end tests against a containerd the harness starts itself (root)
	$(GO) test -count=1 -timeout 30m -v ./test/e2e/

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

clean: ## remove build output
	rm -rf $(BIN)
