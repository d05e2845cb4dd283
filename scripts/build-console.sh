#!/usr/bin/env bash
# Builds the web console into console/dist, which `cargo build` then embeds in the `webhooks`
# binary (so run this first; scripts/run.sh and scripts/test.sh do). Steps, in console/:
#
#   npm ci           the exact packages of package-lock.json (skipped when already installed)
#   npm run build    TypeScript generated from proto/ by `buf generate` (into src/gen, not
#                    committed), `tsc --noEmit`, then `vite build`
#
# Needs Node.js 20 or newer with npm: when node or npm is missing, Debian's `nodejs` and `npm`
# packages are installed (with sudo when not root). Debian 12's nodejs is 18, too old: there,
# install Node.js 20+ first (Debian 13's nodejs is 20).
#
#   scripts/build-console.sh          install (if needed) and build
#   scripts/build-console.sh --test   also run the unit tests (vitest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'build-console: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

run_tests=false
for arg in "$@"; do
    case $arg in
    --test) run_tests=true ;;
    *) die "unknown argument: $arg (only --test)" ;;
    esac
done

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# --- Node.js and npm --------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing=()
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    log "installing ${missing[*]} from Debian's packages"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
    hash -r
fi
command -v node >/dev/null 2>&1 || die "node is still not on PATH"
command -v npm >/dev/null 2>&1 || die "npm is still not on PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
    die "Node.js $(node --version) is too old: the console's build (protoc-gen-es, Vite) and its browser tests (playwright-core) need Node.js 20 or newer"
fi
log "node $(node --version), npm $(npm --version)"

cd console

# --- Packages: npm ci when package-lock.json changed since the last install -------------------
stamp=node_modules/.installed-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "npm ci"
    npm ci --no-audit --no-fund >&2
    printf '%s\n' "$want" >"$stamp"
fi

# --- Build ------------------------------------------------------------------------------------
log "npm run build (buf generate, tsc --noEmit, vite build)"
npm run --silent build >&2
[[ -f dist/index.html ]] || die "the build did not produce console/dist/index.html"

if $run_tests; then
    log "npm test (vitest)"
    npm test >&2
fi
log "console/dist is ready"
