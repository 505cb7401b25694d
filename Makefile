# Release packaging. `make dist` builds the release binary and
# dist/dokku-audit-<version>-<arch>.tar.gz, which `dokku plugin:install <url> --name audit`
# accepts: the plugin files at the tarball's root, the binary in bin/, shell completions in
# contrib/completions/ and the man page in contrib/man/.
#   make dist                      # cargo build --profile dist (fat LTO), then package
#   make dist BIN=path/to/binary   # package an already built binary (tests)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
ARCH := $(shell uname -m)
DIST ?= dist
BIN ?=
NAME := dokku-audit-$(VERSION)-$(ARCH)
STAGE := $(DIST)/$(NAME)

.PHONY: dist clean-dist

dist:
ifeq ($(BIN),)
	cargo build --profile dist --locked
	$(eval BIN := target/dist/dokku-audit)
endif
	rm -rf "$(STAGE)" "$(DIST)/$(NAME).tar.gz"
	mkdir -p "$(STAGE)/bin" "$(STAGE)/contrib/completions" "$(STAGE)/contrib/man"
	cp -a plugin/. "$(STAGE)/"
	cp "$(BIN)" "$(STAGE)/bin/dokku-audit"
	chmod 0755 "$(STAGE)/bin/dokku-audit"
	"$(STAGE)/bin/dokku-audit" completions bash > "$(STAGE)/contrib/completions/dokku-audit.bash"
	"$(STAGE)/bin/dokku-audit" completions zsh > "$(STAGE)/contrib/completions/_dokku-audit"
	"$(STAGE)/bin/dokku-audit" completions fish > "$(STAGE)/contrib/completions/dokku-audit.fish"
	"$(STAGE)/bin/dokku-audit" man > "$(STAGE)/contrib/man/dokku-audit.1"
	tar -C "$(STAGE)" --owner=0 --group=0 -czf "$(DIST)/$(NAME).tar.gz" .
	rm -rf "$(STAGE)"
	@echo "$(DIST)/$(NAME).tar.gz"

clean-dist:
	rm -rf "$(DIST)"
