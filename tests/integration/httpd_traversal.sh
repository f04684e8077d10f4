#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Attempts to leave coil-httpd's document root: dot segments plain and
# percent-encoded (%2e%2e, .%2e, %252e double encoding, overlong UTF-8),
# encoded slashes and backslashes, NUL bytes, absolute-form targets, and
# symlinks in the root that point to /etc, /etc/passwd and a file beside
# the root. Never a 2xx, never the content of a file outside the root;
# with GET and HEAD, from httpd_client.py (exact bytes on the wire) and
# from curl --path-as-is.
#
# usage: httpd_traversal.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_traversal "$@"
need_tool curl curl

httpd_start
pyclient traversal
PASSWD_LINE=$(head -n 1 /etc/passwd)
for target in /../etc/passwd /%2e%2e/%2e%2e/etc/passwd /..%2fetc/passwd \
	/a/../../etc/passwd /etc/passwd /passwd-link /secret-link /../secret.txt; do
	rm -f "$TMP_DIR/b"
	st=$(ccurl --path-as-is -o "$TMP_DIR/b" -w '%{http_code}' "$BASE$target") ||
		fail "curl --path-as-is $target failed"
	if [ -f "$TMP_DIR/b" ] && { grep -qF "$PASSWD_LINE" "$TMP_DIR/b" ||
		grep -qF "$SECRET_MARK" "$TMP_DIR/b"; }; then
		fail "curl --path-as-is $BASE$target: got $st with the content of a file outside the root"
	fi
	case $st in
	2??) fail "curl --path-as-is $BASE$target: status $st, want an error" ;;
	esac
	echo "curl --path-as-is $target -> $st"
done
httpd_stop
echo "PASS: httpd_traversal"
