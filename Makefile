# lab: see README.md. Everything here runs as root on Debian 12.
GO      ?= go
LAB     := bin/lab
LABFILE ?= labs/todomvc/lab.yaml
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all setup build up down test unit fuzz bench lint clean

all: build

## setup: install the Debian packages lab needs (idempotent); run through sudo,
## also grant the invoking user what running labs without root takes
setup:
	./scripts/setup.sh
	@if [ -n "$$SUDO_USER" ] && [ "$$SUDO_USER" != root ]; then $(MAKE) --no-print-directory build && $(LAB) host setup --user "$$SUDO_USER"; fi

## build: build bin/lab and its network helper bin/lab-net (lab without root)
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(LAB) ./cmd/lab
	$(GO) build -o bin/lab-net ./cmd/lab-net

## up: set up the machine and bring up the default lab (labs/todomvc)
up: setup build
	$(LAB) -f $(LABFILE) up

## down: destroy the default lab
down: build
	$(LAB) -f $(LABFILE) destroy

## test: every test: unit, a short fuzz run, integration and end-to-end on real LXC
test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 75m -p 1 ./...
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 20000x ./topology

## unit: unit tests only (no root, no machine changes)
unit:
	$(GO) test -short -count=1 ./...

## fuzz: a longer fuzz run of the topology loader
# Fuzz runs are counted in executions, not seconds: Go 1.26's fuzzing
# coordinator can fail a wall-clock -fuzztime with "context deadline
# exceeded" at its end (golang/go#75804, fixed in Go 1.27).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 300000x ./topology

## bench: speed of lab up/destroy against liblxc started directly (the floor)
bench: setup
	$(GO) test -count=1 -timeout 45m -run '^$$' -bench . -benchtime 3x ./bench/ ./labs/...

lint:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...

clean:
	rm -rf bin
