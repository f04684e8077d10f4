#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_report: turn scripts/bench's raw runs into results and charts.

    bench_report.py report --runs RUNS.tsv --meta META.tsv --out DIR
        Writes DIR/results.json (every run, medians per server and scenario,
        ratios to the baseline, acceptance checks, configuration, host,
        build, git commit), DIR/results.md (the tables) and, when gnuplot is
        installed, DIR/{rate,cpu,latency}.{png,svg} (gnuplot scripts and
        data under DIR/plot/). Prints results.md.

    bench_report.py publish --from DIR --root REPO
        Copies DIR's results.md and SVG charts to REPO/docs/bench/ and
        rewrites the block between "<!-- bench:begin -->" and
        "<!-- bench:end -->" in REPO/README.md with the tables and charts.

    bench_report.py load-json FILE
        Reads the --json output of coil-load http and prints one line
        "requests=N rate=R p50=.. p75=.. p90=.. p99=.. p999=.. max=.. bad=.."
        (latencies in µs, "-" where absent; bad is "-" or why the run is
        void). Exit 1 if FILE has no request count or rate.

RUNS.tsv: one line per run, tab-separated: mode scenario server label rep
status rate count cpu_us_per_op cpu_pct p50 p75 p90 p99 p999 max client
note. META.tsv: "key<TAB>value" lines; a key seen twice (note) is a list.
Only the standard library; run with /usr/bin/python3.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

RUN_FIELDS = ["mode", "scenario", "server", "label", "rep", "status", "rate",
              "count", "cpu_us_per_op", "cpu_pct", "p50", "p75", "p90",
              "p99", "p999", "max", "client", "note"]
PCTS = ["p50", "p75", "p90", "p99", "p999", "max"]
PCT_NAMES = {"p50": "p50", "p75": "p75", "p90": "p90", "p99": "p99",
             "p999": "p99.9", "max": "max"}
MODES = ("echo", "http", "bypass")
SCENARIO_ORDER = {"echo": ["depth1", "depth8", "latency"],
                  "http": ["plaintext", "pipeline16", "latency"],
                  "bypass": ["echo1", "echo50", "http1", "http50"]}
BASELINE = {"echo": "epoll", "http": "nginx", "bypass": "uring"}
BASE_NAME = {"echo": "epoll", "http": "nginx", "bypass": "io_uring"}
MODE_TITLE = {"echo": "Echo", "http": "HTTP",
              "bypass": "Kernel bypass (DPDK over a memif link vs io_uring over loopback)"}
UNIT = {"echo": ("msgs/s", "CPU µs/msg"), "http": ("req/s", "CPU µs/req"),
        "bypass": ("msgs or req/s", "CPU µs/msg or req")}
# Short names and colours for the charts, per server key and mode.
SHORT = {("echo", "coil"): "coil io_uring", ("echo", "coilep"): "coil epoll",
         ("echo", "coilalt"): "coil (alt)", ("echo", "epoll"): "epoll-echo",
         ("http", "coil"): "coil-httpd", ("http", "coilalt"): "coil (alt)",
         "twisted": "twisted", "eventlet": "eventlet", "nginx": "nginx",
         "h2o": "h2o", ("bypass", "uring"): "coil io_uring (lo)",
         ("bypass", "dpdk"): "coil DPDK (memif)"}
COLOUR = {"coil": 0xD62728, "coilep": 0xFF9896, "coilalt": 0x9467BD,
          "epoll": 0x1F77B4, "nginx": 0x1F77B4, "h2o": 0x17BECF,
          "twisted": 0x2CA02C, "eventlet": 0xBCBD22, "uring": 0x1F77B4,
          "dpdk": 0xD62728}
# Acceptance targets of issue 4 (coil-httpd vs nginx): (scenario, what,
# op, target).
HTTP_TARGETS = [("plaintext", "cpu", "<=", 0.85),
                ("plaintext", "rate", ">=", 1.00),
                ("pipeline16", "cpu", "<=", 0.35),
                ("latency", "rate", ">=", 2.50)]
# Targets of issue 13 (coil on DPDK over a kernel-free link vs coil on
# io_uring over loopback): (scenario, what, op, target).
BYPASS_TARGETS = [("echo50", "cpu", "<=", 0.35),
                  ("echo1", "rate", ">=", 2.00),
                  ("http50", "cpu", "<=", 0.50)]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def num(s):
    """A float from a TSV cell, None for "-" or empty."""
    if s in ("-", "", None):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def short(mode, server):
    return SHORT.get((mode, server), SHORT.get(server, server))


# ---- load-json -------------------------------------------------------------

def flatten(obj, prefix=""):
    """{path: value} of every number in a JSON tree, keys lower-cased and
    joined by '/' (keys such as "p99.9" contain dots)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, prefix + str(k).lower() + "/"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(flatten(v, prefix + str(i) + "/"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix[:-1]] = float(obj)
    return out


def pick(flat, patterns):
    """The first value (in pattern order) whose key matches a regex."""
    for pat in patterns:
        for path, v in flat.items():
            if re.fullmatch(pat, path.rsplit("/", 1)[-1]):
                return v
    return None


PCT_ALIASES = {"p50": "p50", "50": "p50", "p75": "p75", "75": "p75",
               "p90": "p90", "90": "p90", "p99": "p99", "99": "p99",
               "p999": "p999", "p99.9": "p999", "p99_9": "p999",
               "99.9": "p999", "max": "max"}
UNIT_US = {"us": 1.0, "ns": 1e-3, "ms": 1e3, "s": 1e6}


def load_json(path):
    """Normalise coil-load's --json output: {"done": N, "per_second": R,
    "errors": {..., "total": N}, "status": {"200": N, ...}, "latency_ns":
    {"p50": .., "p90": .., "p99": .., "p99.9": .., "max": ..}}. Also
    accepted, should that change: the count as requests/responses/
    completed, the rate as rps/req_per_s/requests_per_sec, anywhere in the
    tree; latencies as p50, p50_us, "50", p999, p99_9... under any key
    containing "lat", in µs unless the key or its parent ends in
    _ns/_ms/_s."""
    with open(path) as f:
        flat = flatten(json.load(f))
    res = {"requests": pick(flat, [r"done", r"(requests|responses|completed)(_total)?",
                                   r"total_requests"]),
           "rate": pick(flat, [r"per_second", r"rps|req_per_s|requests_per_sec(ond)?|req_s",
                               r"throughput"])}
    for key in PCTS:
        res[key] = None
    for path, v in flat.items():
        parts = path.split("/")
        if not any("lat" in q for q in parts[:-1] + [parts[-1]]):
            continue
        m = re.fullmatch(r"(.+?)(?:_(us|ns|ms|s))?", parts[-1])
        key = PCT_ALIASES.get(m.group(1))
        if key is None or res[key] is not None:
            continue
        unit = m.group(2)
        if unit is None and len(parts) > 1:
            pm = re.search(r"_(us|ns|ms|s)$", parts[-2])
            unit = pm.group(1) if pm else None
        res[key] = v * UNIT_US[unit or "us"]
    bad = []
    # Any error count voids the run: the total where there is one, else
    # the sum of the parts.
    errs = pick(flat, [r"total"]) if any(p == "errors/total" for p in flat) else None
    if errs is None:
        errs = sum(v for p, v in flat.items() if "error" in p)
    if errs:
        bad.append("errors=%d" % errs)
    # Status code counts such as {"status": {"200": n, "404": m}}: the
    # benchmark expects 200 only.
    non200 = sum(v for p, v in flat.items()
                 if re.fullmatch(r"status/\d\d\d", p) and p != "status/200")
    if non200:
        bad.append("non-200=%d" % non200)
    res["bad"] = ",".join(bad) or None
    # coil-load --cpu-pid: the server's CPU over the counted time
    res["cpu"] = flat.get("server_cpu/us_per_op")
    share = flat.get("server_cpu/core_share")
    res["util"] = None if share is None else share * 100
    return res


def cmd_load_json(args):
    r = load_json(args.file)
    if not r["requests"] or not r["rate"]:
        print("bench_report: %s: no request count or rate" % args.file,
              file=sys.stderr)
        return 1

    def fmt(v):
        return "-" if v is None else ("%.1f" % v)
    print("requests=%d rate=%.1f %s bad=%s cpu=%s util=%s" % (
        r["requests"], r["rate"],
        " ".join("%s=%s" % (k, fmt(r[k])) for k in PCTS), r["bad"] or "-",
        "-" if r["cpu"] is None else "%.4f" % r["cpu"], fmt(r["util"])))
    return 0


# ---- report ------------------------------------------------------------------

def read_meta(path):
    meta, notes = {}, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            k, _, v = line.partition("\t")
            if k == "note":
                notes.append(v)
            else:
                meta[k] = v
    return meta, notes


def read_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if len(cells) != len(RUN_FIELDS):
                raise SystemExit("bench_report: %s: bad line %r" % (path, line))
            r = dict(zip(RUN_FIELDS, cells))
            run = {"mode": r["mode"], "scenario": r["scenario"],
                   "server": r["server"], "label": r["label"],
                   "rep": int(r["rep"]), "status": r["status"],
                   "client": r["client"]}
            if r["status"] == "ok":
                run["rate"] = num(r["rate"])
                run["unit"] = UNIT[r["mode"]][0]
                run["count"] = int(float(r["count"]))
                run["cpu_us_per_op"] = num(r["cpu_us_per_op"])
                run["server_cpu_pct"] = num(r["cpu_pct"])
                lat = {PCT_NAMES[p]: num(r[p]) for p in PCTS if num(r[p]) is not None}
                run["latency_us"] = lat or None
                run["params"] = r["note"]
            else:
                run["error"] = r["note"]
            runs.append(run)
    return runs


def summarise(runs, meta):
    """The scenarios in run order, each with per-server medians."""
    scenarios = []
    for mode in MODES:
        names = [s for s in SCENARIO_ORDER[mode]
                 if any(r["mode"] == mode and r["scenario"] == s for r in runs)]
        for name in names:
            mine = [r for r in runs if r["mode"] == mode and r["scenario"] == name]
            servers = []
            for r in mine:
                if r["server"] not in servers:
                    servers.append(r["server"])
            rows = []
            for s in servers:
                rs = [r for r in mine if r["server"] == s]
                ok = [r for r in rs if r["status"] == "ok"]
                lat = {}
                for p in PCTS:
                    m = median([(r["latency_us"] or {}).get(PCT_NAMES[p]) for r in ok])
                    if m is not None:
                        lat[PCT_NAMES[p]] = m
                rows.append({
                    "server": s, "label": rs[0]["label"],
                    "short": short(mode, s),
                    "runs": len(rs), "runs_ok": len(ok),
                    "median": {
                        "rate": median([r["rate"] for r in ok]),
                        "cpu_us_per_op": median([r["cpu_us_per_op"] for r in ok]),
                        "server_cpu_pct": median([r["server_cpu_pct"] for r in ok]),
                        "latency_us": lat or None,
                    }})
            base = next((x for x in rows if x["server"] == BASELINE[mode]), None)
            for x in rows:
                m, b = x["median"], (base or {}).get("median", {})
                x["vs_baseline"] = {
                    "rate": ratio(m["rate"], b.get("rate")),
                    "cpu_us_per_op": ratio(m["cpu_us_per_op"], b.get("cpu_us_per_op"))}
            scenarios.append({
                "mode": mode, "name": name,
                "title": meta.get("scenario.%s.%s.title" % (mode, name), name),
                "params": meta.get("scenario.%s.%s.params" % (mode, name), ""),
                "unit": UNIT[mode][0], "baseline": BASELINE[mode],
                "servers": rows, "checks": checks(mode, name, rows)})
    return scenarios


def checks(mode, name, rows):
    by = {x["server"]: x for x in rows}
    out = []
    if mode == "echo" and "coil" in by and "coilep" in by:
        a, b = by["coil"]["median"], by["coilep"]["median"]
        out.append({"what": "coil io_uring / coil epoll",
                    "rate": ratio(a["rate"], b["rate"]),
                    "cpu_us_per_op": ratio(a["cpu_us_per_op"], b["cpu_us_per_op"])})
    targets = None
    if mode == "http" and "coil" in by:
        v, targets, who = by["coil"]["vs_baseline"], HTTP_TARGETS, "coil-httpd / nginx"
    if mode == "bypass" and "dpdk" in by:
        v, targets, who = by["dpdk"]["vs_baseline"], BYPASS_TARGETS, "DPDK / io_uring"
    for scen, what, op, target in targets or []:
        if scen != name:
            continue
        got = v["rate" if what == "rate" else "cpu_us_per_op"]
        met = None if got is None else (got <= target if op == "<=" else got >= target)
        out.append({"what": "%s %s" % (who, UNIT[mode][0] if what == "rate"
                                         else UNIT[mode][1]),
                    "ratio": got, "target": "%s %.2fx" % (op, target), "met": met})
    return out


def fmt_num(v, digits=0):
    if v is None:
        return "-"
    return "%.*f" % (digits, v)


def fmt_ratio(v):
    return "-" if v is None else "%.2fx" % v


def markdown_tables(scenarios, heading="###"):
    """Per mode, one table with a row per scenario and server."""
    lines = []
    for mode in MODES:
        mine = [s for s in scenarios if s["mode"] == mode]
        if not mine:
            continue
        rate_u, cpu_u = UNIT[mode]
        base_name = BASE_NAME[mode]
        lat_cols = [p for p in ("p50", "p90", "p99", "p99.9")
                    if any((x["median"]["latency_us"] or {}).get(p) is not None
                           for s in mine for x in s["servers"])]
        lines.append("%s %s" % (heading, MODE_TITLE[mode]))
        lines.append("")
        for s in mine:
            lines.append("- `%s`: %s" % (s["name"], s["title"].split(": ", 1)[-1]))
        lines.append("")
        hdr = ["config", "server", "%s" % rate_u, cpu_u, "server CPU %"]
        hdr += ["%s µs" % p for p in lat_cols]
        hdr += ["%s vs %s" % (rate_u, base_name), "CPU vs %s" % base_name]
        lines.append("| " + " | ".join(hdr) + " |")
        lines.append("|---|---|" + "---:|" * (len(hdr) - 2))
        for s in mine:
            first = True
            for x in s["servers"]:
                m = x["median"]
                row = ["`%s`" % s["name"] if first else "", x["label"]]
                first = False
                row += [fmt_num(m["rate"]), fmt_num(m["cpu_us_per_op"], 3),
                        fmt_num(m["server_cpu_pct"])]
                row += [fmt_num((m["latency_us"] or {}).get(p)) for p in lat_cols]
                row += [fmt_ratio(x["vs_baseline"]["rate"]),
                        fmt_ratio(x["vs_baseline"]["cpu_us_per_op"])]
                if x["runs_ok"] < x["runs"]:
                    row[1] += " (%d of %d runs failed)" % (x["runs"] - x["runs_ok"], x["runs"])
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        for s in mine:
            for c in s["checks"]:
                if "target" in c:
                    lines.append("- `%s`: %s %s (target %s: %s)" % (
                        s["name"], c["what"], fmt_ratio(c["ratio"]), c["target"],
                        {True: "met", False: "missed", None: "n/a"}[c["met"]]))
                else:
                    lines.append("- `%s`: %s: %s %s, CPU %s" % (
                        s["name"], c["what"], rate_u, fmt_ratio(c["rate"]),
                        fmt_ratio(c["cpu_us_per_op"])))
        lines.append("")
    return lines


def header_lines(res):
    m, h, c = res["meta"], res["host"], res["config"]
    lines = ["- `%s` on %s, %s, commit %s%s" % (
        c["command"], res["date"], "%s CPUs (%s), kernel %s" % (
            h["cpus"], h["cpu_model"], h["kernel"]),
        res["git"]["commit"][:12], " (dirty)" if res["git"]["dirty"] else "")]
    lines.append("- server pinned to CPU %s, client to CPU %s; %s interleaved "
                 "reps per server, medians; warm-up %ss, measured %ss "
                 "(http: %ss, %ss); load average %s before, %s after" % (
                     c["server_cpu"], c["client_cpu"], c["reps"],
                     c["warmup_s"], c["duration_s"], c["http_warmup_s"],
                     c["http_duration_s"], h["loadavg_before"],
                     h["loadavg_after"]))
    clients = []
    if "echo" in c["clients"]:
        clients.append("echo: %s" % c["clients"]["echo"]["name"])
    if "http" in c["clients"]:
        clients.append(("http: %s %s" % (c["clients"]["http"]["name"],
                                         c["clients"]["http"]["version"])).strip())
    if "bypass" in c["clients"]:
        clients.append("bypass: %s" % c["clients"]["bypass"]["name"])
    if clients:
        lines.append("- load clients: %s; build %s" % (
            ", ".join(clients), "/".join(str(v) for v in res["build"].values()) or "?"))
    try:
        busy = float((h["loadavg_before"] or "0").split()[0])
    except ValueError:
        busy = 0.0
    if busy > 1.0:   # half of this 2-CPU machine busy elsewhere
        lines.append("- busy machine: load average %.2f before the run (other "
                     "jobs); rates are noisy, CPU per operation less so" % busy)
    for n in m.get("notes", []):
        lines.append("- note: %s" % n)
    return lines


def build_results(runs, meta, notes):
    def g(k, d=None):
        return meta.get(k, d)
    clients = {}
    if g("echo.client"):
        clients["echo"] = {"name": g("echo.client")}
    if g("http.client"):
        clients["http"] = {"name": g("http.client"),
                           "version": g("http.client_version", "")}
    if g("bypass.client"):
        clients["bypass"] = {"name": g("bypass.client")}
    res = {
        "schema": 1,
        "date": g("date"),
        "git": {"commit": g("git.commit", "unknown"),
                "dirty": g("git.dirty") == "true"},
        "host": {"name": g("host.name"), "kernel": g("host.kernel"),
                 "cpus": int(g("host.cpus", "0")),
                 "cpu_model": g("host.cpu_model"),
                 "mem_kib": int(g("host.mem_kib", "0") or 0),
                 "loadavg_before": g("host.loadavg_before"),
                 "loadavg_after": g("host.loadavg_after")},
        "build": {k: g("build." + k) for k in ("buildtype", "sanitize")
                  if g("build." + k)},
        "config": {"command": g("command"), "reps": int(g("reps", "0")),
                   "duration_s": float(g("duration_s", "0")),
                   "warmup_s": float(g("warmup_s", "0")),
                   "http_duration_s": float(g("http_duration_s", "0")),
                   "http_warmup_s": float(g("http_warmup_s", "0")),
                   "server_cpu": g("server_cpu"), "client_cpu": g("client_cpu"),
                   "clients": clients,
                   "versions": {k[8:]: v for k, v in meta.items()
                                if k.startswith("version.")}},
        "meta": {"notes": notes},
    }
    res["scenarios"] = summarise(runs, meta)
    res["runs"] = runs
    return res


# ---- charts --------------------------------------------------------------------

def gp_str(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def human(v):
    if v is None:
        return ""
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e4:
        return "%.0fk" % (v / 1e3)
    if v >= 100:
        return "%.0f" % v
    return "%.2f" % v


def bar_panel(plot_dir, name, title, ylabel, rows):
    """Data file and gnuplot commands for one bar panel; rows: (short,
    server key, value)."""
    path = os.path.join(plot_dir, name + ".dat")
    with open(path, "w") as f:
        for short_name, key, v in rows:
            f.write('%s %s %d %s\n' % (gp_str(short_name), "NaN" if v is None else repr(v),
                                       COLOUR.get(key, 0x7F7F7F), gp_str(human(v))))
    return "\n".join([
        "set title %s" % gp_str(title),
        "set ylabel %s" % gp_str(ylabel),
        "set yrange [0:*]",
        # 1.5M, 250.0k for rates; plain numbers for µs.
        "set format y %s" % gp_str("%.1s%c" if max(
            (v for _, _, v in rows if v is not None), default=0) >= 1e4 else "%.10g"),
        "plot %s using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \\" % gp_str(path),
        "     '' using 0:2:4 with labels offset 0,0.6 font ',8' notitle",
    ])


def latency_panel(plot_dir, name, title, servers, mode):
    cols = [p for p in ("p50", "p75", "p90", "p99", "p99.9")
            if any((x["median"]["latency_us"] or {}).get(p) is not None for x in servers)]
    path = os.path.join(plot_dir, name + ".dat")
    plots = []
    with open(path, "w") as f:
        f.write("# percentile " + " ".join(x["server"] for x in servers) + "\n")
        for i, p in enumerate(cols):
            vals = [(x["median"]["latency_us"] or {}).get(p) for x in servers]
            f.write("%s %s\n" % (gp_str(p), " ".join(
                "NaN" if v is None else repr(v) for v in vals)))
    for j, x in enumerate(servers):
        plots.append("%s using 0:%d:xtic(1) with linespoints lw 2 pt 7 lc rgb %s title %s" % (
            gp_str(path) if j == 0 else "''", j + 2,
            gp_str("#%06X" % COLOUR.get(x["server"], 0x7F7F7F)),
            gp_str(short(mode, x["server"]))))
    return "\n".join([
        "set title %s" % gp_str(title), "set ylabel 'latency, µs (log)'",
        "set logscale y", "set yrange [*:*]", "set key top left",
        "set format y '%.0s%c'",
        "plot " + ", \\\n     ".join(plots), "unset logscale y"])


def charts(res, out):
    """Write rate/cpu/latency .png and .svg under out; return their names."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("bench_report: NOTE: gnuplot not installed; no charts", file=sys.stderr)
        return []
    plot_dir = os.path.join(out, "plot")
    os.makedirs(plot_dir, exist_ok=True)
    scen = res["scenarios"]
    modes = [m for m in MODES if any(s["mode"] == m for s in scen)]
    ncol = max(len([s for s in scen if s["mode"] == m]) for m in modes) if modes else 0
    figures = {}
    for what, ylabel in (("rate", None), ("cpu", None)):
        panels = []
        for m in modes:
            mine = [s for s in scen if s["mode"] == m]
            for s in mine:
                rows = [(x["short"], x["server"],
                         x["median"]["rate" if what == "rate" else "cpu_us_per_op"])
                        for x in s["servers"]]
                yl = UNIT[m][0] if what == "rate" else UNIT[m][1]
                panels.append(bar_panel(plot_dir, "%s-%s-%s" % (what, m, s["name"]),
                                        "%s %s" % (m, s["name"]), yl + " (median)", rows))
            panels += ["set multiplot next"] * (ncol - len(mine))
        figures[what] = (len(modes), ncol, panels)
    lat = [s for s in scen if any(x["median"]["latency_us"] for x in s["servers"])]
    if lat:
        figures["latency"] = (1, len(lat), [
            latency_panel(plot_dir, "latency-%s-%s" % (s["mode"], s["name"]),
                          "%s %s" % (s["mode"], s["name"]),
                          [x for x in s["servers"] if x["median"]["latency_us"]], s["mode"])
            for s in lat])
    titles = {"rate": "Throughput per server (median; higher is better)",
              "cpu": "Server CPU per message/request (median; lower is better)",
              "latency": "Latency percentiles (median of runs; lower is better)"}
    made = []
    for what, (nrow, ncol_, panels) in figures.items():
        if not nrow or not ncol_:
            continue
        w, h = 520 * ncol_, 420 * nrow + 40
        for term, ext in (("pngcairo size %d,%d font 'sans,10' noenhanced" % (w, h), "png"),
                          ("svg size %d,%d dynamic font 'sans,11' noenhanced background '#ffffff'"
                           % (w, h), "svg")):
            gp = os.path.join(plot_dir, "%s-%s.gp" % (what, ext))
            with open(gp, "w") as f:
                f.write("\n".join([
                    "set terminal " + term,
                    "set output %s" % gp_str(os.path.join(out, "%s.%s" % (what, ext))),
                    "set style fill solid 0.85 border -1",
                    "set boxwidth 0.7",
                    "set grid ytics",
                    "set xtics rotate by 25 right nomirror",
                    "set datafile missing 'NaN'",
                    "set offsets 0.3,0.3,graph 0.12,0",
                    "set multiplot layout %d,%d title %s" % (nrow, ncol_, gp_str(
                        titles[what] + " — " + (res["date"] or ""))),
                    "\n".join(panels),
                    "unset multiplot", ""]))
            p = subprocess.run([gnuplot, gp], capture_output=True, text=True)
            if p.returncode != 0:
                print("bench_report: gnuplot %s failed:\n%s" % (gp, p.stderr), file=sys.stderr)
                raise SystemExit(1)
            made.append("%s.%s" % (what, ext))
    return made


def cmd_report(args):
    meta, notes = read_meta(args.meta)
    runs = read_runs(args.runs)
    res = build_results(runs, meta, notes)
    os.makedirs(args.out, exist_ok=True)
    res["charts"] = charts(res, args.out)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write("\n")
    md = ["# coil benchmark results", ""] + header_lines(res) + [""]
    md += markdown_tables(res["scenarios"], "##")
    for c in ("rate", "cpu", "latency"):
        if "%s.png" % c in res["charts"]:
            md.append("![%s](%s.png)" % (c, c))
    md.append("")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    return 0


# ---- publish ---------------------------------------------------------------------

def cmd_publish(args):
    with open(os.path.join(args.src, "results.json")) as f:
        res = json.load(f)
    dest = os.path.join(args.root, "docs", "bench")
    os.makedirs(dest, exist_ok=True)
    for name in ["results.md", "results.json"] + [c for c in res["charts"] if c.endswith(".svg")]:
        shutil.copyfile(os.path.join(args.src, name), os.path.join(dest, name))
    # results.md links the PNGs, which are not published: point at the SVGs.
    md_path = os.path.join(dest, "results.md")
    with open(md_path) as f:
        text = f.read()
    with open(md_path, "w") as f:
        f.write(re.sub(r"\]\((\w+)\.png\)", r"](\1.svg)", text))
    block = [BEGIN, ""] + header_lines(res) + [""]
    block += markdown_tables(res["scenarios"], "####")
    block += ["![%s](docs/bench/%s)" % (c[:-4], c) for c in res["charts"]
              if c.endswith(".svg") and c[:-4] in ("rate", "cpu")]
    block += ["", "All runs and the latency chart: [docs/bench/](docs/bench/results.md).",
              "", END]
    readme = os.path.join(args.root, "README.md")
    with open(readme) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        print("bench_report: %s has no %s ... %s block" % (readme, BEGIN, END),
              file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(readme, "w") as f:
        f.write(head + "\n".join(block) + tail)
    print("bench_report: published %s to %s and README.md" % (args.src, dest))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report")
    r.add_argument("--runs", required=True)
    r.add_argument("--meta", required=True)
    r.add_argument("--out", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("--root", required=True)
    lj = sub.add_parser("load-json")
    lj.add_argument("file")
    args = ap.parse_args()
    return {"report": cmd_report, "publish": cmd_publish,
            "load-json": cmd_load_json}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
