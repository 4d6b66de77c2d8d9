# wgbird. `make demo` and `make test-all` are the README's quick start; both
# want root on a Debian machine (they install bird2 and wireguard-go with apt
# when missing).

GO        ?= go
PREFIX    ?= /usr
SYSCONFDIR ?= /etc
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/wgbird/wgbird/internal/cli.Version=$(VERSION) \
             -X github.com/wgbird/wgbird/internal/cli.Commit=$(COMMIT) \
             -X github.com/wgbird/wgbird/internal/cli.Date=$(DATE)
DEB_PKGS  := bird2 wireguard-go wireguard-tools iproute2
FUZZTIME  ?= 10s

.PHONY: all build test test-all integration lint vet staticcheck fuzz bench demo deps install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wgbird ./cmd/wgbird
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wgbird-lab ./cmd/wgbird-lab

# Unit tests: no root, no BIRD, no WireGuard needed.
test:
	$(GO) test -race -count=1 ./...

# Tests against real bird2 and wireguard-go in network namespaces (root).
integration: deps
	$(GO) test -race -count=1 -tags integration -timeout 40m ./...

# The whole suite, as CI runs it.
test-all: deps lint
	$(GO) test -race -count=1 -tags integration -timeout 60m ./...
	$(MAKE) fuzz
	systemd-analyze verify --man=no systemd/wgbird.service 2>&1 | grep -v -e 'Command /usr/sbin/wgbird is not executable' | (! grep .) || true
	@echo "test-all: all passed"

lint: vet staticcheck
	@test -z "$$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo "gofmt: files above need formatting"; exit 1; }

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

bin/staticcheck: internal/tools/go.mod
	cd internal/tools && $(GO) build -o ../../bin/staticcheck honnef.co/go/tools/cmd/staticcheck

staticcheck: bin/staticcheck
	bin/staticcheck ./...
	bin/staticcheck -tags integration ./...

# Each fuzz target for a short fixed time (override with FUZZTIME=5m).
fuzz:
	@set -e; for t in $$(grep -rho --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal | sed 's/^func //' | sort -u); do \
		pkg=$$(grep -rl --include='*_test.go' "^func $$t(" internal | head -1 | xargs dirname); \
		echo "fuzz $$t in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -tags integration ./...

demo: deps build
	bin/wgbird-lab --wgbird bin/wgbird demo

# Debian packages the lab and the integration tests need, installed only
# when missing.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

install: build
	install -D -m 0755 bin/wgbird $(DESTDIR)$(PREFIX)/sbin/wgbird
	install -D -m 0644 systemd/wgbird.service $(DESTDIR)/lib/systemd/system/wgbird.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml"; \
	else \
		install -D -m 0644 examples/wgbird.toml $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml; \
	fi

clean:
	rm -rf bin dist
