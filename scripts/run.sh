#!/usr/bin/env bash
# Builds and runs the webhook service (`webhooks serve`) on WEBHOOKS_GRPC_ADDR (default
# 127.0.0.1:50051), and its web console when WEBHOOKS_CONSOLE_ADDR is set, starting a local
# PostgreSQL first when none is reachable. The console's files are built first
# (scripts/build-console.sh: Node.js 20+ and npm) so the binary embeds them. The service creates
# its database and applies migrations itself. Extra arguments go to `webhooks serve`, e.g.
#
#   WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS=true scripts/run.sh --log-format json
#   WEBHOOKS_CONSOLE_ADDR=127.0.0.1:8080 scripts/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'run: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "error: cargo is not on PATH. Install a Rust toolchain with rustup (stable, 1.92 or newer), then run this again."
    exit 1
fi

base=$(scripts/ensure-postgres.sh)
export DATABASE_URL="${DATABASE_URL:-$base/webhooks}"
export WEBHOOKS_GRPC_ADDR="${WEBHOOKS_GRPC_ADDR:-127.0.0.1:50051}"

# The binary embeds console/dist when it is compiled: build the console first.
scripts/build-console.sh
if [[ -n ${WEBHOOKS_CONSOLE_ADDR:-} ]]; then
    log "web console: http://$WEBHOOKS_CONSOLE_ADDR/"
fi
log "building and starting webhooks on $WEBHOOKS_GRPC_ADDR (Ctrl-C stops it)"
exec cargo run --release --bin webhooks -- serve "$@"
