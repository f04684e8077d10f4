#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-httpd driven by curl: the built-in endpoints, keep-alive reuse, HEAD,
# Content-Type by extension, ETag/Last-Modified with 304 (and the cache
# seeing a changed file), Range (206, 416), a 5 MiB file byte-identical
# (also read slowly), request bodies echoed by POST /echo (chunked,
# Content-Length, Expect: 100-continue, over --max-body -> 413), 404, 405
# with Allow, OPTIONS, 501, preconditions (If-Match, If-Unmodified-Since ->
# 412; If-Range), and the access log (combined format, the client's
# address, flushed every second and at exit).
#
# usage: httpd_curl.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_curl "$@"
need_tool curl curl

MAX_BODY=65536
ACCESS_LOG=$TMP_DIR/access.log
httpd_start --max-body "$MAX_BODY" --access-log "$ACCESS_LOG"
H=$TMP_DIR/h B=$TMP_DIR/b

# get <url> [curl args...]: headers to $H, body to $B; prints the status.
get() {
	local url=$1
	shift
	rm -f "$H" "$B"
	ccurl -D "$H" -o "$B" "$@" "$url" || fail "curl $* $url failed"
	status_of "$H"
}

# --- built-in endpoints -----------------------------------------------------
expect_eq "GET /plaintext status" "$(get "$BASE/plaintext")" 200
expect_eq "GET /plaintext body" "$(cat "$B")" "Hello, World!"
expect_eq "GET /plaintext Content-Type" "$(header content-type "$H" | cut -d';' -f1)" text/plain
expect_eq "GET /plaintext Content-Length" "$(header content-length "$H")" 13
[ -n "$(header date "$H")" ] || fail "GET /plaintext: no Date header"
expect_eq "GET /json status" "$(get "$BASE/json")" 200
expect_eq "GET /json body" "$(cat "$B")" '{"message":"Hello, World!"}'
expect_eq "GET /json Content-Type" "$(header content-type "$H" | cut -d';' -f1)" application/json
echo "ok: /plaintext and /json"

# --- keep-alive reuse: several URLs in one curl, one connection ---------------
out=$(ccurl -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} %{http_code}\n' \
	"$BASE/plaintext" "$BASE/json" "$BASE/hello.txt") || fail "curl with three URLs failed"
expect_eq "three URLs in one curl (num_connects, status per transfer)" \
	"$(oneline "$out")" "1 200 0 200 0 200"
out=$(ccurl -o /dev/null -w '%{num_connects} %{http_code}\n' --head "$BASE/big.bin" \
	--next -o /dev/null -w '%{num_connects} %{http_code}\n' "$BASE/plaintext") ||
	fail "curl HEAD then GET failed"
expect_eq "HEAD then GET in one curl (num_connects, status)" "$(oneline "$out")" "1 200 0 200"
echo "ok: keep-alive reuse (num_connects 1, 0, 0)"

# --- HEAD -------------------------------------------------------------------
expect_eq "HEAD /big.bin status" "$(get "$BASE/big.bin" --head)" 200
expect_eq "HEAD /big.bin Content-Length" "$(header content-length "$H")" "$BIG_SIZE"
# (curl --head writes the headers to -o; size_download counts body bytes.)
out=$(ccurl --head -o /dev/null -w '%{size_download}' "$BASE/big.bin") || fail "curl --head failed"
expect_eq "HEAD /big.bin: body bytes received" "$out" 0
expect_eq "HEAD /plaintext status" "$(get "$BASE/plaintext" --head)" 200
expect_eq "HEAD /plaintext Content-Length" "$(header content-length "$H")" 13
echo "ok: HEAD"

# --- Content-Type by extension ------------------------------------------------
for pair in hello.txt:text/plain index.html:text/html style.css:text/css \
	data.json:application/json image.png:image/png; do
	f=${pair%%:*} want=${pair#*:}
	expect_eq "GET /$f status" "$(get "$BASE/$f")" 200
	cmp -s "$B" "$ROOT/$f" || fail "GET /$f: body differs from the file"
	expect_eq "GET /$f Content-Type" "$(header content-type "$H" | cut -d';' -f1)" "$want"
done
expect_eq "GET /app.js status" "$(get "$BASE/app.js")" 200
case $(header content-type "$H" | cut -d';' -f1) in
text/javascript | application/javascript) ;;
*) fail "GET /app.js: Content-Type '$(header content-type "$H")', want text/javascript" ;;
esac
expect_eq "GET /space%20name.txt status" "$(get "$BASE/space%20name.txt")" 200
cmp -s "$B" "$ROOT/space name.txt" || fail "GET /space%20name.txt: wrong body"
expect_eq "GET /sub/dir/file.txt status" "$(get "$BASE/sub/dir/file.txt")" 200
cmp -s "$B" "$ROOT/sub/dir/file.txt" || fail "GET /sub/dir/file.txt: wrong body"
echo "ok: static files and Content-Type by extension"

# --- validators: ETag, Last-Modified, 304 ------------------------------------
expect_eq "GET /hello.txt status" "$(get "$BASE/hello.txt")" 200
ETAG=$(header etag "$H")
LM=$(header last-modified "$H")
[ -n "$ETAG" ] || fail "GET /hello.txt: no ETag"
# make_root set every mtime to 2024-01-02 03:04:05 UTC; IMF-fixdate.
expect_eq "GET /hello.txt Last-Modified" "$LM" "Tue, 02 Jan 2024 03:04:05 GMT"
WEAK_ETAG="W/${ETAG#W/}"
cond() { # cond <want-status> <label> <curl args...>
	local want=$1 label=$2 got
	shift 2
	got=$(get "$BASE/hello.txt" "$@")
	[ "$got" = "$want" ] || fail "GET /hello.txt with $label: status $got, want $want"
	if [ "$want" = 304 ]; then
		[ ! -s "$B" ] || fail "GET /hello.txt with $label: 304 with a body"
		expect_eq "304 for $label: ETag" "$(header etag "$H")" "$ETAG"
	else
		cmp -s "$B" "$ROOT/hello.txt" || fail "GET /hello.txt with $label: wrong body"
	fi
}
cond 304 "If-None-Match: the ETag" -H "If-None-Match: $ETAG"
cond 304 "If-None-Match: a list holding the ETag" -H "If-None-Match: \"nope\", $ETAG"
cond 304 "If-None-Match: the weak form of the ETag" -H "If-None-Match: $WEAK_ETAG"
cond 304 "If-None-Match: *" -H "If-None-Match: *"
cond 200 "If-None-Match: another tag" -H 'If-None-Match: "nope"'
cond 304 "If-Modified-Since: Last-Modified" -H "If-Modified-Since: $LM"
cond 304 "If-Modified-Since: a later date" -H "If-Modified-Since: $(date -u -R -d '+1 hour' | sed 's/+0000/GMT/')"
cond 200 "If-Modified-Since: an earlier date" -H "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT"
cond 200 "If-Modified-Since: not a date" -H "If-Modified-Since: yesterday-ish"
cond 200 "If-None-Match: another tag + If-Modified-Since: Last-Modified (If-None-Match wins)" \
	-H 'If-None-Match: "nope"' -H "If-Modified-Since: $LM"
expect_eq "HEAD /hello.txt with If-None-Match" "$(get "$BASE/hello.txt" --head -H "If-None-Match: $ETAG")" 304
# If-Match (strong comparison) and If-Unmodified-Since: 412 when they fail,
# evaluated before If-None-Match / If-Modified-Since (RFC 9110 13.2.2).
fails() { # fails <label> <curl args...>: 412, and the connection goes on
	local label=$1 out
	shift
	out=$(ccurl -D "$H" -o "$B" -w '%{http_code}\n' "$@" "$BASE/hello.txt" \
		--next -o /dev/null -w '%{num_connects} %{http_code}\n' "$BASE/plaintext") ||
		fail "GET /hello.txt with $label: curl failed"
	expect_eq "GET /hello.txt with $label (status, then reuse and status)" \
		"$(oneline "$out")" "412 0 200"
	grep -q 'Precondition Failed' "$B" || fail "GET /hello.txt with $label: 412 body '$(cat "$B")'"
}
cond 200 "If-Match: the ETag" -H "If-Match: $ETAG"
cond 200 "If-Match: *" -H "If-Match: *"
cond 200 "If-Match: a list holding the ETag" -H "If-Match: \"nope\", $ETAG"
fails "If-Match: another tag" -H 'If-Match: "nope"'
fails "If-Match: the weak form of the ETag (strong comparison)" -H "If-Match: $WEAK_ETAG"
cond 200 "If-Unmodified-Since: Last-Modified" -H "If-Unmodified-Since: $LM"
fails "If-Unmodified-Since: an earlier date" -H "If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT"
cond 200 "If-Unmodified-Since: not a date" -H "If-Unmodified-Since: yesterday-ish"
cond 200 "If-Match: the ETag + If-Unmodified-Since: an earlier date (If-Match wins)" \
	-H "If-Match: $ETAG" -H "If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT"
fails "If-Match: another tag + If-None-Match: the ETag (If-Match first)" \
	-H 'If-Match: "nope"' -H "If-None-Match: $ETAG"
cond 304 "If-Match: the ETag + If-None-Match: the ETag" -H "If-Match: $ETAG" -H "If-None-Match: $ETAG"
fails "If-Unmodified-Since: an earlier date + If-Modified-Since: Last-Modified" \
	-H "If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT" -H "If-Modified-Since: $LM"
expect_eq "HEAD /hello.txt with a failing If-Match" \
	"$(get "$BASE/hello.txt" --head -H 'If-Match: "nope"')" 412
# A changed file (same size, new mtime) is served fresh, cache or not. The
# response cache checks a file against the disk at most once a second
# (engine/http/files_cache.c), so give it that second.
printf 'HELLO FROM COIL-HTTPD\n' >"$ROOT/hello.txt"
touch -d '2024-02-03 04:05:06 UTC' "$ROOT/hello.txt"
sleep 1.2
cond 200 "If-None-Match: the ETag of the old content" -H "If-None-Match: $ETAG"
expect_eq "GET /hello.txt after the change: Last-Modified" "$(header last-modified "$H")" \
	"Sat, 03 Feb 2024 04:05:06 GMT"
[ "$(header etag "$H")" != "$ETAG" ] || fail "GET /hello.txt after the change: ETag unchanged ($ETAG)"
ETAG=$(header etag "$H")
cond 304 "If-None-Match: the new ETag" -H "If-None-Match: $ETAG"
echo "ok: ETag, Last-Modified, 304, 412 (If-Match, If-Unmodified-Since) and a changed file"

# --- Range --------------------------------------------------------------------
BIG=$ROOT/big.bin
# range <curl -r spec> <first> <last>: 206, Content-Range, exact bytes.
range() {
	local spec=$1 first=$2 last=$3 got
	got=$(get "$BASE/big.bin" -r "$spec")
	[ "$got" = 206 ] || fail "GET /big.bin Range: bytes=$spec: status $got, want 206"
	expect_eq "Range: bytes=$spec: Content-Range" "$(header content-range "$H")" \
		"bytes $first-$last/$BIG_SIZE"
	expect_eq "Range: bytes=$spec: Content-Length" "$(header content-length "$H")" \
		"$((last - first + 1))"
	dd if="$BIG" of="$TMP_DIR/want" iflag=skip_bytes,count_bytes skip="$first" \
		count="$((last - first + 1))" status=none
	cmp -s "$B" "$TMP_DIR/want" || fail "Range: bytes=$spec: body differs from bytes $first-$last of the file"
}
range 0-99 0 99
range 0-0 0 0
range 1000-1999 1000 1999
range -500 $((BIG_SIZE - 500)) $((BIG_SIZE - 1))
range 5242000- 5242000 $((BIG_SIZE - 1))
range $((BIG_SIZE - 1))-9999999 $((BIG_SIZE - 1)) $((BIG_SIZE - 1))
range 1-$((BIG_SIZE - 2)) 1 $((BIG_SIZE - 2))
for spec in 6000000-6000100 $BIG_SIZE-; do
	got=$(get "$BASE/big.bin" -r "$spec")
	[ "$got" = 416 ] || fail "GET /big.bin Range: bytes=$spec: status $got, want 416"
	expect_eq "416 for bytes=$spec: Content-Range" "$(header content-range "$H")" "bytes */$BIG_SIZE"
done
# Several ranges: a single-range server answers 200 with the whole file.
got=$(get "$BASE/big.bin" -r 0-1,5-6)
case $got in
200) cmp -s "$B" "$BIG" || fail "Range: bytes=0-1,5-6: 200 but not the whole file" ;;
206) case $(header content-type "$H") in
	multipart/byteranges*) ;;
	*) fail "Range: bytes=0-1,5-6: 206 but not multipart/byteranges" ;;
	esac ;;
*) fail "GET /big.bin Range: bytes=0-1,5-6: status $got, want 200 (or 206 multipart)" ;;
esac
# If-Range: the current ETag -> the range; another -> the whole file.
BIG_ETAG=$(get "$BASE/big.bin" --head >/dev/null; header etag "$H")
expect_eq "Range with If-Range: the ETag" "$(get "$BASE/big.bin" -r 10-19 -H "If-Range: $BIG_ETAG")" 206
expect_eq "Range with If-Range: another ETag" "$(get "$BASE/big.bin" -r 10-19 -H 'If-Range: "nope"')" 200
cmp -s "$B" "$BIG" || fail "Range with a stale If-Range: 200 but not the whole file"
BIG_LM=$(header last-modified "$H")
expect_eq "Range with If-Range: the weak ETag" "$(get "$BASE/big.bin" -r 10-19 -H "If-Range: W/$BIG_ETAG")" 200
cmp -s "$B" "$BIG" || fail "Range with a weak If-Range: 200 but not the whole file"
expect_eq "Range with If-Range: Last-Modified" "$(get "$BASE/big.bin" -r 10-19 -H "If-Range: $BIG_LM")" 206
expect_eq "Range with If-Range: an earlier date" \
	"$(get "$BASE/big.bin" -r 10-19 -H 'If-Range: Mon, 01 Jan 2024 00:00:00 GMT')" 200
expect_eq "Range with If-Match: another ETag" "$(get "$BASE/big.bin" -r 10-19 -H 'If-Match: "nope"')" 412
# A range of a small (cacheable) file.
expect_eq "GET /index.html Range: bytes=2-8" "$(get "$BASE/index.html" -r 2-8)" 206
expect_eq "GET /index.html Range: bytes=2-8 body" "$(cat "$B")" "doctype"
echo "ok: Range 206 (7 forms), 416 (2), several ranges, If-Range (strong ETag, date, weak, stale)"

# --- 5 MiB byte-identical, twice on one connection, then slowly --------------
out=$(ccurl -o "$TMP_DIR/big1" -o "$TMP_DIR/big2" -w '%{num_connects} %{http_code} %{size_download}\n' \
	"$BASE/big.bin" "$BASE/big.bin") || fail "curl of /big.bin twice failed"
expect_eq "GET /big.bin twice (num_connects status size)" "$(oneline "$out")" \
	"1 200 $BIG_SIZE 0 200 $BIG_SIZE"
cmp "$TMP_DIR/big1" "$BIG" || fail "GET /big.bin: first download differs from the file"
cmp "$TMP_DIR/big2" "$BIG" || fail "GET /big.bin: second download differs from the file"
ccurl -o "$TMP_DIR/big3" --limit-rate 4M "$BASE/big.bin" || fail "slow curl of /big.bin failed"
cmp "$TMP_DIR/big3" "$BIG" || fail "GET /big.bin at 4 MB/s: download differs from the file"
echo "ok: 5 MiB file byte-identical (twice on one connection, and read at 4 MB/s)"

# --- request bodies (POST|PUT /echo answers with the body) ------------------------
head -c 200000 /dev/urandom >"$TMP_DIR/up.bin"
head -c 1000 /dev/urandom >"$TMP_DIR/small.bin"
head -c 60000 /dev/urandom >"$TMP_DIR/mid.bin"
# echo_then_json <label> <file> <curl args>: upload <file> to /echo (the
# body must come back), then GET /json in the same curl, on the same
# connection.
echo_then_json() {
	local label=$1 file=$2 st reuse
	shift 2
	out=$(ccurl -D "$H" -o "$B" -w '%{http_code} %{time_total}\n' --data-binary @"$file" \
		"$@" "$BASE/echo" \
		--next -o "$TMP_DIR/b2" -w '%{num_connects} %{http_code}\n' "$BASE/json") ||
		fail "$label: curl failed"
	st=$(echo "$out" | sed -n 1p)
	expect_eq "$label: POST /echo status" "${st%% *}" 200
	cmp -s "$B" "$file" || fail "$label: POST /echo: the body that came back differs from the one sent ($(wc -c <"$B") of $(wc -c <"$file") bytes)"
	expect_eq "$label: then GET /json body" "$(cat "$TMP_DIR/b2")" '{"message":"Hello, World!"}'
	reuse=$(echo "$out" | sed -n 2p)
	expect_eq "$label: then GET /json (num_connects, status)" "$reuse" "0 200"
	awk -v t="${st#* }" 'BEGIN { exit !(t < 0.9) }' ||
		fail "$label: took ${st#* } s (curl waits 1 s for a 100 Continue that does not come)"
	echo "ok: $label: echoed byte-identical in ${st#* } s, then GET /json on the same connection"
}
echo_then_json "chunked upload of 1000 bytes" "$TMP_DIR/small.bin" -H 'Transfer-Encoding: chunked'
echo_then_json "chunked upload of 60000 bytes" "$TMP_DIR/mid.bin" -H 'Transfer-Encoding: chunked'
echo_then_json "Content-Length upload of 1000 bytes" "$TMP_DIR/small.bin"
echo_then_json "Content-Length upload of 60000 bytes with Expect: 100-continue" \
	"$TMP_DIR/mid.bin" -H 'Expect: 100-continue'
echo_then_json "chunked upload of 60000 bytes with Expect: 100-continue" \
	"$TMP_DIR/mid.bin" -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue'
# Over --max-body: 413 at once, before curl sends the body it announced.
out=$(ccurl -D "$H" -o "$B" -w '%{http_code} %{time_total}\n' -H 'Expect: 100-continue' \
	--data-binary @"$TMP_DIR/up.bin" "$BASE/echo") || fail "curl of 200000 bytes to /echo failed"
expect_eq "POST /echo with Content-Length 200000 > --max-body $MAX_BODY" "${out%% *}" 413
awk -v t="${out#* }" 'BEGIN { exit !(t < 0.9) }' ||
	fail "POST /echo over --max-body with Expect: 100-continue: 413 after ${out#* } s"
# A body where none is wanted: 405 with Allow; the body is read and dropped.
out=$(ccurl -D "$H" -o "$B" -w '%{http_code}\n' --data-binary @"$TMP_DIR/small.bin" \
	-H 'Transfer-Encoding: chunked' "$BASE/plaintext" \
	--next -o "$TMP_DIR/b2" -w '%{num_connects} %{http_code}\n' "$BASE/json") ||
	fail "curl POST /plaintext then GET /json failed"
expect_eq "POST /plaintext (chunked), then GET /json" "$(oneline "$out")" "405 0 200"
[ -n "$(header allow "$H")" ] || fail "POST /plaintext: 405 without Allow"
echo "ok: > --max-body -> 413 at once; POST /plaintext -> 405 (Allow: $(header allow "$H")), body dropped, connection kept"

# --- errors ---------------------------------------------------------------------
expect_eq "GET /no-such-file" "$(get "$BASE/no-such-file")" 404
expect_eq "GET /sub/no-such-file" "$(get "$BASE/sub/no-such-file")" 404
expect_eq "DELETE /hello.txt" "$(get "$BASE/hello.txt" -X DELETE)" 405
ALLOW=$(header allow "$H")
case ", $ALLOW," in
*", GET,"* | *",GET,"*) ;;
*) fail "DELETE /hello.txt: 405 with Allow '$ALLOW', want it to list GET" ;;
esac
case $ALLOW in *HEAD*) ;; *) fail "DELETE /hello.txt: Allow '$ALLOW' lacks HEAD" ;; esac
expect_eq "BREW /hello.txt (unknown method)" "$(get "$BASE/hello.txt" -X BREW)" 501
st=$(get "$BASE/plaintext" -X OPTIONS)
case $st in
200 | 204) [ -n "$(header allow "$H")" ] || fail "OPTIONS /plaintext: $st without Allow" ;;
*) fail "OPTIONS /plaintext: status $st, want 204 (or 200) with Allow" ;;
esac
echo "ok: 404, 405 (Allow: $ALLOW), 501, OPTIONS -> $st (Allow: $(header allow "$H"))"

# --- access log (combined format), flushed every second and at exit -------------
ccurl -o /dev/null -H 'Referer: http://coil.test/from' -A 'coil-test-agent/1.0' \
	"$BASE/json?log=mark" || fail "curl /json?log=mark failed"
LOGLINE='127.0.0.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000\] '
wait_for 5 grep -q 'log=mark' "$ACCESS_LOG" ||
	fail "--access-log: the line for /json?log=mark not written within 5 s (flushed every second)"
grep -Eq "^${LOGLINE}\"GET /json\\?log=mark HTTP/1.1\" 200 27 \"http://coil.test/from\" \"coil-test-agent/1.0\"\$" \
	"$ACCESS_LOG" || fail "--access-log: no combined-format line for /json?log=mark: $(grep 'log=mark' "$ACCESS_LOG")"
echo "ok: access log flushed while running: $(grep 'log=mark' "$ACCESS_LOG")"
ccurl -o /dev/null "$BASE/no-such-file?log=last" || true
httpd_stop
[ -s "$ACCESS_LOG" ] || fail "--access-log $ACCESS_LOG is empty after the run"
bad=$(grep -Evc "^${LOGLINE}\"" "$ACCESS_LOG" || true)
expect_eq "--access-log lines not in combined format from 127.0.0.1" "$bad" 0
for want in '"GET /plaintext HTTP/1.1" 200 13 ' '"HEAD /big.bin HTTP/1.1" 200 ' \
	'"DELETE /hello.txt HTTP/1.1" 405 ' '"BREW /hello.txt HTTP/1.1" 501 ' \
	'"GET /hello.txt HTTP/1.1" 412 ' '"GET /hello.txt HTTP/1.1" 304 0 ' \
	'"GET /big.bin HTTP/1.1" 206 10 ' "\"GET /big.bin HTTP/1.1\" 200 $BIG_SIZE " \
	'"POST /echo HTTP/1.1" 413 ' '"GET /no-such-file?log=last HTTP/1.1" 404 '; do
	grep -qF "$want" "$ACCESS_LOG" || fail "--access-log has no line with '$want'"
done
echo "ok: access log ($(wc -l <"$ACCESS_LOG") lines, all combined format from 127.0.0.1; the last one written at exit), e.g.: $(head -n 1 "$ACCESS_LOG")"
echo "PASS: httpd_curl"
