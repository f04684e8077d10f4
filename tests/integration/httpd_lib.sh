# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for the coil-httpd integration scripts (httpd_*.sh); sourced,
# never run directly. Builds on lib.sh (skip, fail, wait_exit, wait_for,
# now_ms, the cleanup trap, the private network namespace).
#
# Every script is called by meson as
#   <script> <coil-httpd>
# and exits 0 (pass), 1 (fail) or 77 (skip, with the reason printed). It
# starts its own coil-httpd on 127.0.0.1 --port 0 over a scratch document
# root (see make_root), reads the port from the server's stderr and, on
# exit, stops only the processes it started itself.

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HTTPD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The Python clients run on the system interpreter, never a virtualenv's.
PY=${COIL_TEST_PYTHON:-/usr/bin/python3}
BIG_SIZE=$((5 * 1024 * 1024))

# httpd_init <script-name> "$@": check arguments, enter a private network
# namespace where possible, make a scratch dir and a document root.
httpd_init() {
	TEST_NAME=$1
	shift
	if [ $# -ne 1 ]; then
		echo "usage: $TEST_NAME <coil-httpd>" >&2
		exit 1
	fi
	COIL_HTTPD=$1
	[ -x "$COIL_HTTPD" ] || { echo "FAIL: $TEST_NAME: not an executable: $COIL_HTTPD"; exit 1; }
	[ -r /proc/self/status ] || skip "no /proc"
	# Same private namespace as lib_init: no port clashes, and the server's
	# connections are the only ones in /proc/net/tcp.
	if [ "${COIL_IN_NETNS:-0}" != 1 ] && [ "${COIL_TEST_NETNS:-1}" != 0 ] &&
		command -v unshare >/dev/null && command -v ip >/dev/null &&
		unshare -n true 2>/dev/null; then
		exec env COIL_IN_NETNS=1 unshare -n -- bash -c \
			'ip link set lo up && exec "$@"' coil-netns "$0" "$@"
	fi
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coil-$TEST_NAME.XXXXXX")
	trap lib_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	# A command that fails outside a check (set -e) says where.
	trap 'echo "FAIL: $TEST_NAME: line $LINENO: \"$BASH_COMMAND\" failed"' ERR
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	SANITIZED=${COIL_SANITIZED:-0}
	[ -x "$PY" ] || skip "$PY not found (the Python clients need it)"
	echo "$TEST_NAME: coil-httpd=$COIL_HTTPD sanitized=$SANITIZED" \
		"backend=${COIL_BACKEND:-default} private-netns=${COIL_IN_NETNS:-0}"
	make_root
}

# need_tool <command> <debian-package>: skip, naming the package, if missing.
# scripts/deps.sh installs them all (COIL_BUILD_PKGS).
need_tool() {
	command -v "$1" >/dev/null ||
		skip "$1 not installed (Debian package $2; scripts/test installs it via scripts/deps.sh)"
}

# make_root: the document root $ROOT and, beside it (outside the root),
# $SECRET, a file no request may ever read. The root holds small files of
# several types, a 5 MiB random file, a nested file, a name with a space
# and symlinks that point out of the root.
make_root() {
	ROOT=$TMP_DIR/root
	SECRET=$TMP_DIR/secret.txt
	SECRET_MARK="coil-secret-$RANDOM$RANDOM-must-not-leak"
	mkdir -p "$ROOT/sub/dir"
	echo "$SECRET_MARK" >"$SECRET"
	printf 'hello from coil-httpd\n' >"$ROOT/hello.txt"
	printf '<!doctype html>\n<title>coil</title>\n<p>index</p>\n' >"$ROOT/index.html"
	printf 'body { color: black; }\n' >"$ROOT/style.css"
	printf 'console.log("coil");\n' >"$ROOT/app.js"
	printf '{"coil": true}\n' >"$ROOT/data.json"
	printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$ROOT/image.png"
	printf 'nested file\n' >"$ROOT/sub/dir/file.txt"
	printf 'a name with a space\n' >"$ROOT/space name.txt"
	head -c "$BIG_SIZE" /dev/urandom >"$ROOT/big.bin"
	# Symlinks that leave the root: /etc (so a normalised /../etc/passwd
	# lands on it), /etc/passwd, and a relative
	# one to the secret next to the root.
	ln -s /etc "$ROOT/etc"
	ln -s /etc/passwd "$ROOT/passwd-link"
	ln -s ../secret.txt "$ROOT/secret-link"
	# Timestamps well in the past, so If-Modified-Since tests need no sleep.
	find "$ROOT" -type f -exec touch -h -d '2024-01-02 03:04:05 UTC' {} +
}

# shellcheck disable=SC2120 # arguments are optional
# httpd_start [coil-httpd args...]: start coil-httpd on 127.0.0.1:0 over
# $ROOT; sets SERVER_PID, SERVER_PORT, SERVER_LOG, BASE (http://host:port).
# With COIL_BACKEND set the server gets --backend "$COIL_BACKEND" and must
# report that backend on loop 0.
httpd_start() {
	start_named_server coil-httpd "$COIL_HTTPD" --root "$ROOT" "$@"
	# shellcheck disable=SC2034 # for the scripts
	BASE=http://127.0.0.1:$SERVER_PORT
}

# httpd_alive: fail if the server has exited (crashed) meanwhile, or has
# written a sanitizer report.
httpd_alive() {
	if ! kill -0 "$SERVER_PID" 2>/dev/null ||
		[ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null)" = Z ]; then
		local rc=0
		wait "$SERVER_PID" || rc=$?
		SERVER_PID=
		fail "coil-httpd died unexpectedly (status $rc)"
	fi
	check_server_log
}

# shellcheck disable=SC2120 # the grace argument is optional
# httpd_stop [grace-seconds]: SIGTERM; fail unless it exits 0 in time.
httpd_stop() {
	local grace=${1:-10} rc=0
	[ "$SANITIZED" = 1 ] && grace=$((grace * 2))
	httpd_alive
	kill -TERM "$SERVER_PID"
	if ! wait_exit "$SERVER_PID" "$grace"; then
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
		fail "coil-httpd did not exit within ${grace} s of SIGTERM"
	fi
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	check_server_log
	[ "$rc" -eq 0 ] || fail "coil-httpd exited with status $rc after SIGTERM (want 0)"
	echo "coil-httpd exited 0 after SIGTERM"
}

# free_port: print a TCP port on 127.0.0.1 that was free a moment ago (for
# peers such as nginx that cannot listen on port 0 and report it).
free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# ccurl [curl args...]: curl bounded in time, quiet but showing errors.
ccurl() {
	timeout -k 5 60 curl -sS --max-time 30 "$@"
}

# header <name> <file>: the value of the first header <name> (any case) in a
# curl -D dump, without the trailing CR; empty if absent.
header() {
	awk -v n="$1" 'BEGIN { n = tolower(n) }
		{ sub(/\r$/, "") }
		index(tolower($0), n ":") == 1 { v = substr($0, length(n) + 2); sub(/^[ \t]+/, "", v); print v; exit }' "$2"
}

# status_of <file>: the status code of the last response in a curl -D dump
# (curl writes any 100 Continue first).
status_of() {
	awk '/^HTTP\/[0-9.]+ [0-9][0-9][0-9]/ { s = $2 } END { print s }' "$1"
}

# oneline <text>: the lines of text joined by single spaces.
oneline() {
	tr '\n' ' ' <<<"$1" | sed 's/ $//'
}

# expect_eq <what> <got> <want>
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# pyclient <subcommand> [args...]: the Python client (httpd_client.py)
# against the current server, bounded in time; fails the test if it fails.
pyclient() {
	pyclient_try "$@" || fail "httpd_client.py $* failed (see above)"
}

# pyclient_try <subcommand> [args...]: the same, but returns the client's
# status (so that a script can run its other checks too); still fails at
# once if the server died.
pyclient_try() {
	local rc=0
	timeout -k 5 120 "$PY" "$HTTPD_DIR/httpd_client.py" "$1" --port "$SERVER_PORT" \
		--root "$ROOT" --secret "$SECRET_MARK" "${@:2}" || rc=$?
	httpd_alive
	return "$rc"
}

# nginx_preamble <dir>: the start of an nginx.conf for tests: one process
# in the foreground (no user switch, so no permission trouble), pid, logs
# and temp paths under <dir>; ends inside the open `http {` block.
nginx_preamble() {
	cat <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $1/client_body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
CONF
}
