# container-parts: `make demo` and `make test` set up everything on a fresh Debian machine (as root).
PREFIX ?= /usr/local
LAB ?= $(CURDIR)/.lab
NPM ?= npm

.PHONY: all deps build install demo test mutation bench clean

all: build

# System packages (docker-registry, skopeo, umoci, runc, bubblewrap, ...): installed when missing.
deps:
	scripts/install-deps.sh

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

build: node_modules/.installed
	$(NPM) run --silent build

# The commands on PATH, as symlinks into this checkout's dist/, and their man pages.
install: build
	mkdir -p $(PREFIX)/bin $(PREFIX)/share/man/man1
	for tool in img-fetch img-push img-commit img-unpack ovl-mount ns-enter oci-spec oci-runtime; do \
	  if [ -f dist/tools/$$tool.js ]; then \
	    ln -sf $(CURDIR)/dist/tools/$$tool.js $(PREFIX)/bin/$$tool; \
	    cp dist/man/$$tool.1 $(PREFIX)/share/man/man1/; \
	  fi; \
	done

# The offline demo: a local registry on 127.0.0.1, the lab busybox image, and the pipeline.
demo: deps install
	LAB=$(LAB) scripts/demo.sh

test: deps build
	scripts/run-tests.sh

# Mutation testing (StrykerJS) per module, incremental; prints the score per module (scripts/mutation.sh).
mutation: deps build
	scripts/mutation.sh

bench: deps build
	node dist/bench/run.js

clean:
	rm -rf dist node_modules $(LAB)
