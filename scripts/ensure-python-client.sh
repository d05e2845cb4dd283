#!/usr/bin/env bash
# Sets up the Python client's environment for its tests (tests/clients/python.rs runs pytest in
# it) and type check: a virtual environment in `.cache/python-client` (ignored by git; reused by
# later runs) holding the package built from this checkout (`pip install ./clients/python`, whose
# build generates the stubs from proto/), pytest, mypy and the typing stubs (its `test` extra).
#
#   - Debian's python3 refuses plain pip installs (PEP 668), hence the venv; when python3 or its
#     venv module (Debian's `python3-venv`) is missing, installs them (with sudo when not root);
#   - the package is reinstalled on every run, so the stubs follow proto/;
#   - with --mypy, also runs `mypy --strict` over the installed package and the tests.
#
# Prints the venv's directory; progress goes to stderr. It can be run any number of times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'ensure-python-client: %s\n' "$*" >&2; }
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

mypy=false
for arg in "$@"; do
    case $arg in
    --mypy) mypy=true ;;
    *) die "unknown argument: $arg (usage: $0 [--mypy])" ;;
    esac
done

venv=.cache/python-client
# ensurepip is what Debian splits out into python3-venv: without it `python3 -m venv` fails.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    log "installing Debian's python3 and python3-venv"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv >&2
fi
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating the virtual environment $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
fi
log "installing ./clients/python[test] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "./clients/python[test]" >&2 ||
    die "pip could not install ./clients/python"
"$venv/bin/python" -c 'import backoffice_webhooks' ||
    die "backoffice_webhooks does not import after installing it"

if $mypy; then
    log "mypy --strict on the package and its tests"
    # From clients/python, for its pyproject's [tool.mypy]; the package checked is the installed
    # one, generated stubs included, as users get it.
    (cd clients/python && "../../$venv/bin/mypy" --strict -p backoffice_webhooks &&
        "../../$venv/bin/mypy" --strict tests) >&2 ||
        die "mypy found errors in the Python client"
fi
printf '%s\n' "$PWD/$venv"
