#!/usr/bin/env bash
# Makes the Go client (clients/go) buildable and testable offline, from Debian's packages only
# (the Go module proxy is not reachable from the machines this project runs on):
#
#   - installs, when missing, Debian's Go toolchain and protoc plugins (golang-go,
#     protoc-gen-go, protoc-gen-go-grpc) and the Go sources the client builds against
#     (golang-google-grpc-dev, golang-google-protobuf-dev, golang-google-genproto-dev and
#     golang-github-golang-protobuf-1-5-dev: grpc 1.33 needs the 1.5 API of github.com/golang/protobuf,
#     not the 1.3 one apt picks by default);
#   - generates the Go messages and gRPC stubs from proto/ with the Go plugins of buf.gen.yaml
#     only (clients/go/backoffice/webhooks/v1, not committed), with the buf console/package.json
#     pins;
#   - assembles clients/go/vendor (not committed): a link per module to its Debian sources under
#     /usr/share/gocode/src, and the vendor/modules.txt that `go` checks against go.mod, so that
#     `GOFLAGS=-mod=vendor go test ./...` builds with no network.
#
# Needs console/node_modules (scripts/build-console.sh installs it) for buf. Progress goes to
# stderr; it can be run any number of times. Callers then run, in clients/go:
#
#   GOFLAGS=-mod=vendor GOPROXY=off go test ./...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'ensure-go: %s\n' "$*" >&2; }
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

gocode=/usr/share/gocode/src
# Module path -> the Debian package holding its sources. Every module clients/go/go.mod requires
# is here; the versions in go.mod are the ones these packages carry (Debian 12).
declare -A packages=(
    [google.golang.org/grpc]=golang-google-grpc-dev
    [google.golang.org/protobuf]=golang-google-protobuf-dev
    [google.golang.org/genproto]=golang-google-genproto-dev
    [github.com/golang/protobuf]=golang-github-golang-protobuf-1-5-dev
    [golang.org/x/net]=golang-golang-x-net-dev
    [golang.org/x/sys]=golang-golang-x-sys-dev
    [golang.org/x/text]=golang-golang-x-text-dev
)

missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v protoc-gen-go >/dev/null 2>&1 || missing+=(protoc-gen-go)
command -v protoc-gen-go-grpc >/dev/null 2>&1 || missing+=(protoc-gen-go-grpc)
for module in "${!packages[@]}"; do
    [[ -f $gocode/$module/go.mod ]] || missing+=("${packages[$module]}")
done
# Debian's grpc package is satisfied by the 1.3 API of github.com/golang/protobuf, which lacks
# the protoimpl bridge grpc 1.33's status package needs: ask for 1.5 explicitly.
if [[ -f $gocode/github.com/golang/protobuf/go.mod ]] &&
    ! grep -q 'google.golang.org/protobuf' "$gocode/github.com/golang/protobuf/go.mod"; then
    missing+=(golang-github-golang-protobuf-1-5-dev)
fi
if ((${#missing[@]})); then
    log "installing Debian's ${missing[*]}"
    # Waits for another apt or dpkg run to finish rather than failing on its lock.
    as_root apt-get -o DPkg::Lock::Timeout=600 update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends "${missing[@]}" >&2
fi
command -v go >/dev/null 2>&1 || die "go is still not on PATH after installing golang-go"

buf=console/node_modules/.bin/buf
[[ -x $buf ]] || die "$buf is missing: run scripts/build-console.sh (npm ci in console/) first"

# Generated code: the Go plugins of buf.gen.yaml. Old output goes first, so a message removed
# from proto/ does not linger in a stale file.
rm -rf clients/go/backoffice clients/go/google
# Only the Go entries of buf.gen.yaml's plugins (the other languages' plugins need their own
# tools), with the rest of the template as it is.
go_template=$(awk '
    /^plugins:/ { print; plugins = 1; next }
    !plugins { print; next }
    /^[^ #]/ { plugins = 0; print; next }
    /^  - / { keep = ($0 ~ /^  - local: protoc-gen-go(-grpc)?$/) }
    keep { print }
' buf.gen.yaml)
[[ $(grep -c '^  - local: protoc-gen-go' <<<"$go_template") -eq 2 ]] ||
    die "buf.gen.yaml has no protoc-gen-go and protoc-gen-go-grpc plugins"
"$buf" generate --template "$go_template" >&2
# The vendored Google protos are generated too (the template's input is all of proto/), but the
# client imports them from genproto, as grpc does: a second copy would register the same
# descriptors twice, which protobuf-go refuses.
rm -rf clients/go/google
[[ -f clients/go/backoffice/webhooks/v1/admin_grpc.pb.go ]] ||
    die "buf generate wrote no clients/go/backoffice/webhooks/v1/admin_grpc.pb.go"

# The vendor tree and its modules.txt ("## explicit" for each requirement of go.mod, and the go
# version of each module's own go.mod, which decides the language version it compiles with).
vendor=clients/go/vendor
rm -rf "$vendor"
mkdir -p "$vendor"
modules_txt=$vendor/modules.txt
: >"$modules_txt"
while read -r module version; do
    src=$gocode/$module
    [[ -f $src/go.mod ]] || die "$src/go.mod is missing (Debian package ${packages[$module]:-?})"
    mkdir -p "$vendor/$(dirname "$module")"
    ln -s "$src" "$vendor/$module"
    go_version=$(awk '$1 == "go" { print $2; exit }' "$src/go.mod")
    printf '# %s %s\n## explicit; go %s\n' "$module" "$version" "${go_version:-1.11}" >>"$modules_txt"
done < <(awk '/^require \(/ { inside = 1; next } inside && /^\)/ { inside = 0 } inside { print $1, $2 }' clients/go/go.mod)
log "clients/go: generated from proto/, vendored from $gocode ($(go version))"
