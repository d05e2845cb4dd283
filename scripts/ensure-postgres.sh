#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable and prints its URL as the last line on stdout.
#
#   base=$(scripts/ensure-postgres.sh)      # e.g. postgres://postgres@127.0.0.1:5432
#
# - DATABASE_URL set: it is checked (with pg_isready, when installed) and printed as is.
# - Otherwise, when a server answers on 127.0.0.1:5432, postgres://postgres@127.0.0.1:5432 is
#   printed.
# - Otherwise Debian's PostgreSQL is installed (when absent), its "main" cluster is created
#   (when absent) and started, passwordless TCP logins from 127.0.0.1 and ::1 are allowed (only
#   when such a login fails), and the server URL is printed.
#
# The printed server URL has no database name: callers append one (`<base>/webhooks`) or create
# their own databases. Progress goes to stderr. Safe to run again and again.
set -euo pipefail

PORT=5432
HOST=127.0.0.1
WAIT_SECONDS=30

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Runs a command as root: directly when root, through sudo when available.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# True when a server answers on host:port (no login attempted).
answers() {
    local host=$1 port=$2
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$port" -t 2
    else
        timeout 2 bash -c ": </dev/tcp/$host/$port" 2>/dev/null
    fi
}

# True when user postgres can log in over TCP without a password. Without psql it cannot be
# checked and is assumed.
can_login() {
    local host=$1 port=$2
    command -v psql >/dev/null 2>&1 || return 0
    PGPASSWORD='' PGCONNECT_TIMEOUT=5 psql -X -q -A -t -w \
        -d "postgres://postgres@$host:$port/postgres" -c 'select 1' >/dev/null 2>&1
}

wait_until_ready() {
    local host=$1 port=$2 i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        answers "$host" "$port" && return 0
        sleep 1
    done
    die "no PostgreSQL answered on $host:$port after ${WAIT_SECONDS}s"
}

have_debian_postgres() {
    command -v pg_ctlcluster >/dev/null 2>&1 || return 1
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

install_postgres() {
    log "installing PostgreSQL from Debian's packages"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# Prints the newest version that has a "main" cluster in /etc/postgresql, if any.
cluster_version() {
    local dir
    for dir in /etc/postgresql/*/main; do
        if [[ -f $dir/postgresql.conf ]]; then basename "$(dirname "$dir")"; fi
    done | sort -V | tail -n 1
}

# Prints the newest installed server version.
server_version() {
    local bin
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        if [[ -x $bin ]]; then basename "$(dirname "$(dirname "$bin")")"; fi
    done | sort -V | tail -n 1
}

# Prints "<port> <status>" of cluster <version>/main, from pg_lsclusters.
cluster_state() {
    pg_lsclusters -h 2>/dev/null | awk -v v="$1" '$1 == v && $2 == "main" { print $3, $4; exit }'
}

# Puts trust lines for postgres over 127.0.0.1/32 and ::1/128 first in pg_hba.conf, then reloads.
allow_passwordless_tcp() {
    local version=$1 hba="/etc/postgresql/$1/main/pg_hba.conf" marker='# added by scripts/ensure-postgres.sh'
    [[ -f $hba ]] || die "$hba not found"
    if ! as_root grep -qF "$marker" "$hba"; then
        log "allowing passwordless TCP logins from 127.0.0.1 and ::1 in $hba"
        local tmp
        tmp=$(mktemp)
        {
            printf '%s\n' "$marker"
            printf 'host    all    all    127.0.0.1/32    trust\n'
            printf 'host    all    all    ::1/128         trust\n'
            as_root cat "$hba"
        } >"$tmp"
        as_root cp "$tmp" "$hba"
        rm -f "$tmp"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
}

start_local_cluster() {
    have_debian_postgres || install_postgres
    have_debian_postgres || die "PostgreSQL is still not installed"

    local version
    version=$(cluster_version)
    if [[ -z $version ]]; then
        version=$(server_version)
        [[ -n $version ]] || die "no PostgreSQL server binary under /usr/lib/postgresql"
        log "creating cluster $version/main"
        as_root pg_createcluster "$version" main --start >&2
    fi

    local state port status
    state=$(cluster_state "$version")
    [[ -n $state ]] || die "pg_lsclusters does not list cluster $version/main"
    read -r port status <<<"$state"
    if [[ $status != online* ]]; then
        log "starting cluster $version/main (port $port)"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
    fi
    wait_until_ready "$HOST" "$port"

    if ! can_login "$HOST" "$port"; then
        allow_passwordless_tcp "$version"
        wait_until_ready "$HOST" "$port"
        can_login "$HOST" "$port" ||
            die "user postgres still cannot log in over TCP to $HOST:$port without a password"
    fi
    PORT=$port
}

main() {
    if [[ -n ${DATABASE_URL:-} ]]; then
        if command -v pg_isready >/dev/null 2>&1; then
            local i
            for ((i = 0; i < WAIT_SECONDS; i++)); do
                pg_isready -q -d "$DATABASE_URL" -t 2 && break
                sleep 1
            done
            ((i < WAIT_SECONDS)) || die "the server of DATABASE_URL does not answer"
        fi
        printf '%s\n' "$DATABASE_URL"
        return
    fi

    if answers "$HOST" "$PORT"; then
        if ! can_login "$HOST" "$PORT"; then
            # Our own Debian cluster on this port can be fixed; a foreign server cannot.
            local version state port status
            version=$(cluster_version 2>/dev/null || true)
            state=
            if [[ -n $version ]]; then state=$(cluster_state "$version"); fi
            read -r port status <<<"${state:-0 down}"
            if [[ $port == "$PORT" ]]; then
                allow_passwordless_tcp "$version"
                wait_until_ready "$HOST" "$PORT"
            fi
            can_login "$HOST" "$PORT" ||
                die "a server answers on $HOST:$PORT but refuses user postgres without a password; set DATABASE_URL"
        fi
        log "PostgreSQL answers on $HOST:$PORT"
    else
        log "nothing answers on $HOST:$PORT: starting a local PostgreSQL"
        start_local_cluster
        log "PostgreSQL is ready on $HOST:$PORT"
    fi
    printf 'postgres://postgres@%s:%s\n' "$HOST" "$PORT"
}

main "$@"
