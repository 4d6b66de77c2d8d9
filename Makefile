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
DEB_PKGS  := bird2 wireguard-go wireguard-tools iproute2 nftables
FUZZTIME  ?= 10s

.PHONY: all build test test-all test-bird-versions integration kernel-test kernel-deps lint vet staticcheck fuzz bench demo deps install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wgbird ./cmd/wgbird
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wgbird-lab ./cmd/wgbird-lab

# Unit tests: no root, no BIRD, no WireGuard needed.
test:
	$(GO) test -race -count=1 ./...

# Tests against real bird2 and wireguard-go in network namespaces (root),
# one package at a time: the lab packages (lab, labsoak, labbench) time
# failovers in milliseconds on the same cores and must not share them.
integration: deps
	$(GO) test -race -count=1 -p 1 -tags integration -timeout 40m ./...

# The whole suite, as CI runs it.
test-all: deps lint
	$(GO) test -race -count=1 -p 1 -tags integration -timeout 60m ./...
	$(MAKE) kernel-test
	$(MAKE) test-bird-versions
	$(MAKE) fuzz
	$(MAKE) deb-test
	@echo "test-all: all passed"

# The kernel WireGuard tests (build tag kernelwg) in a qemu guest booting
# Debian's cloud kernel without KVM: the kernel package is fetched with
# apt-get download and extracted, never installed, and cached in
# bin/kernel-wg; each guest test is reported as a subtest of
# TestKernelWireGuard (internal/guest). About 75 s on 2 cores.
KERNEL_PKGS := qemu-system-x86 busybox-static kmod wireguard-tools iproute2 bird2 nftables
kernel-test: kernel-deps
	$(GO) test -count=1 -tags guest -timeout 15m -v -run '^TestKernelWireGuard$$' ./internal/guest

kernel-deps:
	@missing=""; for p in $(KERNEL_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

lint: vet staticcheck
	@test -z "$$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo "gofmt: files above need formatting"; exit 1; }

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags 'integration kernelwg' ./...
	$(GO) vet -tags guest ./internal/guest

bin/staticcheck: internal/tools/go.mod
	cd internal/tools && $(GO) build -o ../../bin/staticcheck honnef.co/go/tools/cmd/staticcheck

staticcheck: bin/staticcheck
	bin/staticcheck ./...
	bin/staticcheck -tags integration ./...
	bin/staticcheck -tags 'integration kernelwg' ./...
	bin/staticcheck -tags guest ./internal/guest

# Each fuzz target for a short fixed time (override with FUZZTIME=5m). Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" as -fuzztime ends (golang/go#75804, fixed in Go 1.27): such a
# run, with no failing input written, is said so and run once more; any
# other failure fails at once.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for t in $$(grep -rho --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal | sed 's/^func //' | sort -u); do \
		pkg=$$(grep -rl --include='*_test.go' "^func $$t(" internal | head -1 | xargs dirname); \
		echo "fuzz $$t in ./$$pkg for $(FUZZTIME)"; \
		if $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$pkg > $$log 2>&1; then cat $$log; \
		else \
			cat $$log; \
			if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "fuzz $$t: Go's fuzz coordinator hit its own deadline (golang/go#75804), no failing input written: once more"; \
				$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$pkg; \
			else exit 1; fi; \
		fi; \
	done

# Benchmarks (root, about 35 minutes): every Go benchmark, then the lab's
# failover table against BIRD alone and ExaBGP's healthcheck (exabgp is
# installed when missing, its service left disabled), the client's view
# through the home network's NAT (outages, with the hang and kill timelines
# drawn into internal/labbench/pictures/*.svg) and wgbird's idle cost, written into
# README.md between <!-- bench:start --> and <!-- bench:end -->. BENCHFLAGS="--reps 5" for a quicker run.
BENCHFLAGS ?= --reps 20 --ref-reps 10
bench: deps build
	@/usr/bin/python3 -m exabgp --version >/dev/null 2>&1 || { echo "installing: exabgp"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends exabgp && \
		{ systemctl disable --now exabgp.service >/dev/null 2>&1 || true; }; }
	$(GO) test -run '^$$' -bench . -benchmem -tags integration ./... >bin/bench-go.txt || { cat bin/bench-go.txt; exit 1; }
	cat bin/bench-go.txt
	bin/wgbird-lab bench --wgbird bin/wgbird --go-bench bin/bench-go.txt --readme README.md --label 'make bench BENCHFLAGS="$(BENCHFLAGS)"' $(BENCHFLAGS)

# BIRD=/opt/bird-3.3.2/sbin/bird runs the demo on another BIRD than the
# one on PATH (.ci/build-bird builds them; birdc is taken from next to it);
# ROUTING=ospf announces the VIP prefix over OSPF instead of BGP.
BIRD ?=
ROUTING ?= bgp
demo: deps build
	bin/wgbird-lab --wgbird bin/wgbird $(if $(BIRD),--bird $(BIRD)) --routing $(ROUTING) demo

# Newer BIRDs than Debian's 2.0.12, as CI tests them (.ci/run): each of
# BIRD_VERSIONS is built by .ci/build-bird from its source tarball in
# BIRD_SRC (default ../shared/bird next to the repository) into
# /opt/bird-VERSION, skipped when already there; then internal/bird's
# integration tests and the lab's hang failover and BIRD restart and
# configure cases run with /opt/bird-VERSION/sbin first on PATH. About
# 3 minutes a build on 2 cores, then under a minute of tests a version.
BIRD_VERSIONS ?= 3.3.2 2.19.2
BIRD_LAB_TESTS := TestFaultModes/^(hang|bird-restart|bird-configure)$$|TestBirdResetOnUnhealthyServer
test-bird-versions: deps
	.ci/build-bird $(BIRD_VERSIONS)
	@set -e; for v in $(BIRD_VERSIONS); do \
		if [ ! -x /opt/bird-$$v/sbin/bird ]; then echo "test-bird-versions: no /opt/bird-$$v, skipped"; continue; fi; \
		echo "test-bird-versions: BIRD $$v"; \
		PATH=/opt/bird-$$v/sbin:$$PATH $(GO) test -race -count=1 -tags integration ./internal/bird; \
		PATH=/opt/bird-$$v/sbin:$$PATH $(GO) test -race -count=1 -tags integration -run '$(BIRD_LAB_TESTS)' ./internal/lab; \
	done

# Debian packages the lab and the integration tests need, installed only
# when missing.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

install: build
	@if [ -z "$(DESTDIR)" ] && ! getent group wgbird >/dev/null; then groupadd --system wgbird; fi
	install -D -m 0755 bin/wgbird $(DESTDIR)$(PREFIX)/sbin/wgbird
	install -D -m 0644 systemd/wgbird.service $(DESTDIR)/lib/systemd/system/wgbird.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml"; \
	else \
		install -D -m 0644 examples/wgbird.toml $(DESTDIR)$(SYSCONFDIR)/wgbird/wgbird.toml; \
	fi

clean:
	rm -rf bin dist

# ---------------------------------------------------------------------------
# Release builds, man page, completions and Debian packages.

# Static binaries, one per target: the Raspberry Pis (arm64, armv7) and
# amd64 boxes.
RELEASE_BINS := dist/wgbird-linux-amd64 dist/wgbird-linux-arm64 dist/wgbird-linux-armv7
# Debian version of the packages (0.0~gitYYYYMMDD.HASH before the first v* tag).
DEB_VERSION ?= $(shell sh internal/packaging/debversion.sh)
# Set to a real address before publishing packages (.invalid: a placeholder).
DEB_MAINTAINER ?= wgbird maintainers <maintainers@wgbird.invalid>
# Commit time: the man page's date and the files' mtime in the .deb.
ifndef SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
endif
export SOURCE_DATE_EPOCH
# The version stamped by LDFLAGS, fixed for this run (HEAD may move meanwhile).
STAMPED_VERSION := $(VERSION)
# nfpm, pinned in internal/tools, run from the repository root.
NFPM = $(GO) tool -modfile=internal/tools/go.mod nfpm

.PHONY: release man completion deb deb-amd64 deb-arm64 deb-armv7 deb-test FORCE

release: $(RELEASE_BINS)
	cd dist && sha256sum $(notdir $(RELEASE_BINS)) > SHA256SUMS
	@cat dist/SHA256SUMS

dist/wgbird-linux-amd64: BUILD_ENV := GOARCH=amd64
dist/wgbird-linux-arm64: BUILD_ENV := GOARCH=arm64
dist/wgbird-linux-armv7: BUILD_ENV := GOARCH=arm GOARM=7
# FORCE: go build's own cache decides what is out of date.
$(RELEASE_BINS): FORCE
	CGO_ENABLED=0 GOOS=linux $(BUILD_ENV) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/wgbird

# wgbird(8) and the bash and zsh completions, generated from the command
# table (internal/cli) into dist/doc. 'man -l dist/doc/wgbird.8' shows it.
man completion: dist/doc/wgbird.8.gz
dist/doc/wgbird.8.gz: FORCE
	$(GO) run ./internal/cli/gendoc -dir dist/doc -version $(STAMPED_VERSION)
	gzip -9nc dist/doc/wgbird.8 > $@

# One .deb per architecture in dist/: wgbird_VERSION-1_{amd64,arm64,armhf}.deb.
deb: deb-amd64 deb-arm64 deb-armv7
	cd dist && sha256sum $(notdir $(RELEASE_BINS)) wgbird_*.deb > SHA256SUMS
	@cat dist/SHA256SUMS

deb-amd64: NFPM_ARCH := amd64
deb-arm64: NFPM_ARCH := arm64
deb-armv7: NFPM_ARCH := arm7
deb-amd64 deb-arm64 deb-armv7: deb-%: dist/wgbird-linux-% dist/doc/wgbird.8.gz
	rm -f dist/wgbird_*_$(subst arm7,armhf,$(NFPM_ARCH)).deb
	NFPM_ARCH=$(NFPM_ARCH) DEB_VERSION='$(DEB_VERSION)' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	WGBIRD_BIN=dist/wgbird-linux-$* WGBIRD_DOC=dist/doc \
		$(NFPM) package --config internal/packaging/nfpm.yaml --packager deb --target dist/

# Install the amd64 package on this machine with apt-get, check it, upgrade
# it over an edited conffile, purge it and check nothing is left (root).
deb-test: deb-amd64
	rm -rf dist/deb-test && mkdir -p dist/deb-test
	NFPM_ARCH=amd64 DEB_VERSION='$(DEB_VERSION)+debtest' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	WGBIRD_BIN=dist/wgbird-linux-amd64 WGBIRD_DOC=dist/doc \
		$(NFPM) package --config internal/packaging/nfpm.yaml --packager deb --target dist/deb-test/
	sh internal/packaging/deb-test.sh ./dist/wgbird_*_amd64.deb ./dist/deb-test/wgbird_*_amd64.deb '$(STAMPED_VERSION)'

FORCE:

# ---------------------------------------------------------------------------
# Soak (issues 6, 16): SOAK_CYCLES fail/heal cycles over both servers with
# random modes, judged by the router's table after every step; goroutines,
# fds and RSS of each wgbird must be flat at the end, and its heap in use
# (after a forced GC) flat within 256 KiB from cycle 100 to the end; heap and
# RSS are printed before the first cycle, after the warm-up, every 100 cycles
# and at the end. The seed is printed: SOAK_SEED=N repeats a run. Root; about
# 5 s a cycle (500 cycles: 42 minutes).
SOAK_CYCLES ?= 500
SOAK_SEED   ?= 0

.PHONY: soak
soak: deps build
	bin/wgbird-lab soak --wgbird bin/wgbird --cycles $(SOAK_CYCLES) --seed $(SOAK_SEED)
