#!/usr/bin/env bash
# Checks the protobuf contract in proto/ (a buf module: proto/buf.yaml) with buf:
#
#   1. `buf format`: the files are as buf formats them;
#   2. `buf lint`: the module's lint rules (STANDARD, with the exceptions buf.yaml lists);
#   3. `buf breaking`: proto/ as it is in the working tree against the base, the proto/ of the
#      last commit of main that changed it (see find_base below);
#   4. that check's own test: a copy of proto/ with one field deleted must fail `buf breaking`
#      against the unchanged copy, with FIELD_NO_DELETE, so a breaking check that can no longer
#      fail does not pass unnoticed.
#
# buf is the @bufbuild/buf pinned in console/package.json (clients/typescript/package.json pins
# the same version for its `buf generate`), installed with `scripts/build-console.sh --install-only`; it runs on the Node.js that
# scripts/ensure-node.sh provides. scripts/test.sh runs this script.
#
#   scripts/check-proto.sh                  all four
#   WEBHOOKS_PROTO_BASE=<rev> scripts/check-proto.sh
#                                           breaking against that revision instead of the base
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'check-proto: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- buf ---------------------------------------------------------------------------------------
node_dir=$(scripts/ensure-node.sh) || die "no Node.js 20 or newer (buf's launcher needs it)"
if [[ -n $node_dir ]]; then
    export PATH="$node_dir:$PATH"
    hash -r
fi
scripts/build-console.sh --install-only
buf=$PWD/console/node_modules/.bin/buf
[[ -x $buf ]] || die "console/node_modules/.bin/buf is missing after npm ci (console/package.json pins @bufbuild/buf)"
log "buf $("$buf" --version)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# --- 1, 2: format and lint ---------------------------------------------------------------------
log "buf format --diff --exit-code proto"
"$buf" format --diff --exit-code proto || die "proto/ is not as buf formats it: run \`buf format -w proto\`"
log "buf lint proto"
"$buf" lint proto

# --- 3: breaking against the base -------------------------------------------------------------
# The base is the proto/ of the last commit of main (the local branch, else origin/main) that
# changed proto/, following main's first parents (a merge counts as the change it brought in).
# When the working tree's proto/ is that very commit's (CI on main, right after the change
# landed), the base is the change before it, so the newest change is the one checked. With no
# earlier change (a first commit) there is nothing to break. A shallow clone is deepened first:
# its cut-off commit would look like the one that added proto/ and hide every older version.
find_base() {
    local ref=$1 base
    base=$(git rev-list -n 1 --first-parent "$ref" -- proto)
    [[ -n $base ]] || return 0
    if git diff --quiet "$base" -- proto && [[ -z $(git ls-files --others --exclude-standard -- proto) ]]; then
        if git rev-parse -q --verify "$base^" >/dev/null; then
            base=$(git rev-list -n 1 --first-parent "$base^" -- proto)
        else
            base=
        fi
    fi
    printf '%s\n' "$base"
}

if [[ -n ${WEBHOOKS_PROTO_BASE:-} ]]; then
    base=$(git rev-parse --verify "$WEBHOOKS_PROTO_BASE^{commit}") || die "WEBHOOKS_PROTO_BASE=$WEBHOOKS_PROTO_BASE is no commit"
    ref=$WEBHOOKS_PROTO_BASE
else
    git rev-parse --git-dir >/dev/null 2>&1 || die "not a git checkout: the breaking check needs main's history"
    if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
        log "shallow clone: fetching the full history (git fetch --unshallow) to find the base"
        git fetch --quiet --unshallow >&2 ||
            die "this shallow clone could not be deepened; the breaking check needs main's history (clone with full history, e.g. fetch-depth: 0)"
    fi
    ref=
    for candidate in main origin/main; do
        if git rev-parse -q --verify "$candidate^{commit}" >/dev/null; then
            ref=$candidate
            break
        fi
    done
    [[ -n $ref ]] || die "neither main nor origin/main is in this clone: fetch main (or set WEBHOOKS_PROTO_BASE)"
    base=$(find_base "$ref")
fi

if [[ -z $base ]]; then
    log "no earlier version of proto/ on $ref: nothing it could break"
else
    log "buf breaking proto against $(git log -1 --format='%h %s' "$base") (base found on $ref)"
    git archive "$base" proto | tar -x -C "$scratch"
    breaking_config=()
    if [[ ! -f $scratch/proto/buf.yaml ]]; then
        # A base from before proto/ was a buf module (before buf.yaml) has none of the language
        # options, so adding them reads as changing them. Those five rules are left out for such
        # a base only; from the first base with buf.yaml on, they hold like every other FILE rule.
        log "the base predates proto/buf.yaml: FILE rules except the FILE_SAME_* of the language options it added"
        breaking_config=(--config '{"version":"v2","breaking":{"use":["FILE"],"except":["FILE_SAME_GO_PACKAGE","FILE_SAME_JAVA_PACKAGE","FILE_SAME_JAVA_MULTIPLE_FILES","FILE_SAME_CSHARP_NAMESPACE","FILE_SAME_PHP_NAMESPACE"]}}')
    fi
    # From inside proto/: a --config module is the current folder.
    (cd proto && "$buf" breaking . --against "$scratch/proto" "${breaking_config[@]}")
fi

# --- 4: a removed field must fail the breaking check ------------------------------------------
log "a deliberately removed field (Webhook.description) must fail buf breaking"
mkdir -p "$scratch/removed"
cp -r proto "$scratch/removed/proto"
file=$scratch/removed/proto/backoffice/webhooks/v1/webhook.proto
sed -i '/^  string description = 7;$/d' "$file"
! grep -q 'description = 7' "$file" || die "could not delete Webhook.description from the copy of webhook.proto"
set +e
"$buf" breaking "$scratch/removed/proto" --against proto --error-format json >"$scratch/removed.out" 2>&1
status=$?
set -e
((status != 0)) || die "buf breaking passed with Webhook.description deleted"
grep -q '"type":"FIELD_NO_DELETE"' "$scratch/removed.out" ||
    die "buf breaking failed (exit $status), but not with FIELD_NO_DELETE: $(cat "$scratch/removed.out")"
log "buf breaking exited $status with FIELD_NO_DELETE, as it must"
log "proto/ is formatted, lint-clean and compatible with its base"
