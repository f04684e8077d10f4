#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# scripts/bench end to end, small: one echo and one HTTP scenario, two
# servers each, one 1 s run apiece (about 10 s). Checks that it exits 0 and
# writes results.json with every run and the medians (rates consistent with
# the counts, CPU per operation, latency percentiles for HTTP, host, config,
# client and commit), results.md with a row per server, and non-empty PNG
# and SVG charts; and that bad arguments are refused with status 2.
# The figures themselves are not judged: this machine may be busy.
#
# usage: bench_smoke.sh <coil-echo> <echo-integrity> <idle-conns>
#        (COIL_BUILD_DIR: the build directory with coil-httpd, coil-echobench
#        and epoll-echo; set by meson)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lib_init bench_smoke "$@"

BENCH=$(cd "$(dirname "$0")/../.." && pwd)/scripts/bench
[ -n "${COIL_BUILD_DIR:-}" ] || fail "COIL_BUILD_DIR not set"
command -v gnuplot >/dev/null || skip "gnuplot not installed (Debian gnuplot-nox)"
command -v wrk >/dev/null || skip "wrk not installed"
command -v nginx >/dev/null || skip "nginx not installed (Debian nginx-light)"

# Refused before anything runs.
for bad in "echo --reps 0" "http --config nosuch" "all --servers nosuch" "nosuch"; do
	rc=0
	# shellcheck disable=SC2086 # words on purpose
	"$BENCH" $bad --no-build >"$TMP_DIR/bad.out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || fail "scripts/bench $bad: status $rc, want 2: $(cat "$TMP_DIR/bad.out")"
done

OUT=$TMP_DIR/out
rc=0
COIL_ECHO=$COIL_ECHO "$BENCH" all --reps 1 --duration 1 --warmup 0 \
	--config depth1,plaintext --servers coil,epoll,nginx --no-build \
	--out "$OUT" >"$TMP_DIR/bench.out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$TMP_DIR/bench.out"
	fail "scripts/bench exited with status $rc"
fi

/usr/bin/python3 - "$OUT" <<'PY' || fail "results do not hold what they should"
import json, os, re, sys

out = sys.argv[1]
res = json.load(open(os.path.join(out, "results.json")))
errors = []


def check(cond, what):
    if not cond:
        errors.append(what)


for k in ("schema", "date", "git", "host", "build", "config", "scenarios", "runs"):
    check(k in res, "results.json lacks %r" % k)
check(re.fullmatch(r"[0-9a-f]{40}|unknown", res["git"]["commit"]), "git commit %r" % res["git"]["commit"])
check(res["host"]["cpus"] >= 1 and res["host"]["kernel"], "host %r" % res["host"])
c = res["config"]
check(c["reps"] == 1 and c["duration_s"] == 1, "config %r" % c)
check(c["clients"]["echo"]["name"] == "coil-echobench", "echo client %r" % c["clients"])
check(c["clients"]["http"]["name"] in ("wrk", "coil-load"), "http client %r" % c["clients"])

want = {("echo", "depth1"): ["coil", "epoll"], ("http", "plaintext"): ["coil", "nginx"]}
got = {(s["mode"], s["name"]): s for s in res["scenarios"]}
check(set(got) == set(want), "scenarios %r" % sorted(got))
for key, servers in want.items():
    s = got.get(key)
    if not s:
        continue
    check([x["server"] for x in s["servers"]] == servers, "%r servers %r" % (key, s["servers"]))
    for x in s["servers"]:
        m = x["median"]
        check(x["runs_ok"] == 1, "%r %s: runs_ok %r" % (key, x["server"], x["runs_ok"]))
        check((m["rate"] or 0) > 0, "%r %s: rate %r" % (key, x["server"], m["rate"]))
        check((m["cpu_us_per_op"] or 0) > 0, "%r %s: cpu %r" % (key, x["server"], m["cpu_us_per_op"]))
        if key[0] == "http":
            lat = m["latency_us"] or {}
            check(0 < lat.get("p50", 0) <= lat.get("p99", 0), "%r %s: latency %r" % (key, x["server"], lat))
    base = [x for x in s["servers"] if x["server"] == s["baseline"]]
    check(base and abs(base[0]["vs_baseline"]["rate"] - 1) < 1e-9, "%r: baseline ratio" % (key,))

check(len(res["runs"]) == 4, "%d runs, want 4" % len(res["runs"]))
for r in res["runs"]:
    check(r["status"] == "ok", "run failed: %r" % r)
    if r["status"] == "ok":
        # The rate is the count over the measured second (wrk: whole
        # seconds; the echo client: its own clock).
        check(r["count"] > 0 and 0.7 < r["rate"] / r["count"] < 1.3,
              "rate %r vs count %r" % (r["rate"], r["count"]))

md = open(os.path.join(out, "results.md")).read()
for label in ("coil-echo io_uring", "epoll-echo (baseline)", "coil-httpd", "nginx"):
    check("| " + label in md, "results.md has no row for %s" % label)
for name in ("rate", "cpu", "latency"):
    check(name + ".png" in res["charts"] and name + ".svg" in res["charts"], "charts %r" % res["charts"])
    png = svg = b""
    if os.path.exists(os.path.join(out, name + ".png")):
        png = open(os.path.join(out, name + ".png"), "rb").read()
        svg = open(os.path.join(out, name + ".svg"), "rb").read()
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000, "%s.png: %d bytes" % (name, len(png)))
    check(b"<svg" in svg and b"</svg>" in svg, "%s.svg is not an SVG" % name)
check(os.path.getsize(os.path.join(out, "bench.log")) > 0, "bench.log empty")
if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
client=$(sed -n 's/^- load clients: .*http: \([^ ;]*\).*/\1/p' "$OUT/results.md")
echo "PASS: bench_smoke: $(grep -c '^|' "$OUT/results.md") table lines, charts" \
	"$(cd "$OUT" && echo *.png), HTTP client $client"
