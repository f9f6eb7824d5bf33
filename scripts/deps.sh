#!/usr/bin/env bash
# `make deps`: makes this machine able to run `make test`, or says exactly
# what is missing and how to get it. Idempotent: on a ready machine it only
# checks and prints what it found. `make test` and .ci/run both run it.
#
# What the suite needs besides Go (the Temporal CLI is the Makefile's
# temporal-cli target, run after this script):
#   Chromium      /usr/bin/chromium or $WARDEN_CHROMIUM (the Web UI browser test)
#   PostgreSQL    127.0.0.1:5432, trust auth, superuser "postgres", database "test"
#                 (or $WARDEN_TEST_DATABASE_URL); chaos tests also start private
#                 clusters from the server binaries in /usr/lib/postgresql/15/bin
#                 (or $WARDEN_TEST_POSTGRES_BIN)
#
# Root with apt-get: missing Debian packages are installed. Otherwise the
# script prints the command to run and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
	echo "deps: $*" >&2
	exit 1
}

is_root() { [ "$(id -u)" = 0 ]; }
can_apt() { is_root && command -v apt-get >/dev/null; }

apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		echo "deps: apt-get update ..."
		apt-get update -qq
		apt_updated=1
	fi
	echo "deps: apt-get install -y $* (a minute or two) ..."
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Go
command -v go >/dev/null || fail "Go is not installed: install Go 1.26 (https://go.dev/dl/) and put it on PATH"
gov=$(go env GOVERSION)
case "$gov" in
go1.2[6-9]* | go1.[3-9][0-9]*) echo "deps: Go: $gov" ;;
*) fail "Go $gov is too old: go.mod needs Go 1.26 (GOTOOLCHAIN=local, no toolchain download)" ;;
esac

# --- Chromium
chromium=${WARDEN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
	if [ -n "${WARDEN_CHROMIUM:-}" ]; then
		fail "WARDEN_CHROMIUM=$WARDEN_CHROMIUM is not an executable file"
	fi
	if can_apt; then
		apt_install chromium
	else
		fail "Chromium is missing (the Web UI test drives it): run
    sudo apt-get install -y chromium
or set WARDEN_CHROMIUM to a Chromium/Chrome binary"
	fi
	[ -x "$chromium" ] || fail "apt-get installed chromium but $chromium is still missing"
fi
echo "deps: Chromium: $chromium ($("$chromium" --version 2>/dev/null | head -1 || echo 'version unknown'))"

# --- PostgreSQL
# psql_ok URL: does the server at URL accept a query?
psql_ok() { psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1; }

pg_bin_dir() {
	local d
	for d in "${WARDEN_TEST_POSTGRES_BIN:-}" /usr/lib/postgresql/*/bin; do
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# Debian's client and server packages; the chaos tests use version 15's binaries.
# WARDEN_DEPS_PG_PORT moves everything below off 5432: only this script's own
# test uses it (the suite itself needs 5432 or WARDEN_TEST_DATABASE_URL).
pg_port=${WARDEN_DEPS_PG_PORT:-5432}
pg_packages="postgresql postgresql-client"

if [ -n "${WARDEN_TEST_DATABASE_URL:-}" ]; then
	command -v psql >/dev/null || fail "psql is missing: run
    sudo apt-get install -y postgresql-client"
	psql_ok "$WARDEN_TEST_DATABASE_URL" || fail "WARDEN_TEST_DATABASE_URL=$WARDEN_TEST_DATABASE_URL does not answer"
	echo "deps: PostgreSQL: $WARDEN_TEST_DATABASE_URL (WARDEN_TEST_DATABASE_URL) answers"
else
	if ! command -v psql >/dev/null || ! pg_bin_dir >/dev/null; then
		if can_apt; then
			# The package's post-install script creates (and in a container
			# usually cannot start) the "main" cluster; it is started below.
			apt_install $pg_packages
		elif ! command -v psql >/dev/null; then
			fail "PostgreSQL is missing: run
    sudo apt-get install -y $pg_packages
(any server on 127.0.0.1:$pg_port with trust auth for user postgres also works)"
		fi
	fi
	base="postgres://postgres@127.0.0.1:$pg_port"
	if pg_isready -q -h 127.0.0.1 -p $pg_port 2>/dev/null; then
		echo "deps: PostgreSQL: 127.0.0.1:$pg_port answers; using it"
	elif command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | awk -v port="$pg_port" '$3 == port {found=1} END {exit !found}'; then
		read -r ver name _ < <(pg_lsclusters -h | awk -v port="$pg_port" '$3 == port')
		is_root || fail "PostgreSQL cluster $ver/$name (port $pg_port) is installed but down: run
    sudo pg_ctlcluster $ver $name start"
		echo "deps: PostgreSQL: starting the installed cluster $ver/$name on port $pg_port ..."
		pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
	elif bindir=$(pg_bin_dir); then
		# No cluster: a private one of this user's, trust auth, on $pg_port.
		data=${WARDEN_PG_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/postgres}
		run_as=()
		if is_root; then
			id postgres >/dev/null 2>&1 || fail "initdb refuses to run as root and there is no postgres user: run
    sudo useradd --system postgres"
			run_as=(runuser -u postgres --)
			data=${WARDEN_PG_DATA:-/var/lib/warden-postgres}
		fi
		if [ ! -f "$data/PG_VERSION" ]; then
			echo "deps: PostgreSQL: initializing a private cluster in $data ($bindir, a few seconds) ..."
			mkdir -p "$data"
			is_root && chown postgres: "$data"
			"${run_as[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
			printf "\nlisten_addresses = '127.0.0.1'\nport = $pg_port\nunix_socket_directories = '%s'\n" "$data" >>"$data/postgresql.conf"
		fi
		echo "deps: PostgreSQL: starting the private cluster in $data on 127.0.0.1:$pg_port ..."
		"${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/postgres.log" -w -t 60 start >/dev/null ||
			fail "the private cluster did not start; its log: $data/postgres.log"
		echo "deps: PostgreSQL: stop it with: ${run_as[*]} $bindir/pg_ctl -D $data stop"
	else
		fail "no PostgreSQL server binaries: run
    sudo apt-get install -y $pg_packages"
	fi
	for _ in $(seq 1 30); do
		psql_ok "$base/postgres" && break
		sleep 1
	done
	psql_ok "$base/postgres" || fail "127.0.0.1:$pg_port does not accept user postgres without a password (the tests need trust auth; or set WARDEN_TEST_DATABASE_URL)"
	if ! psql_ok "$base/test"; then
		echo "deps: PostgreSQL: creating database test"
		psql "$base/postgres" -XAtqc 'CREATE DATABASE test' >/dev/null
	fi
	echo "deps: PostgreSQL: $base/test ready"
fi

# --- Go modules (quiet when already downloaded)
echo "deps: Go modules: go mod download"
go mod download
