#!/usr/bin/env python3
"""One page from several benchmark runs: reads the JSON files bench.py
writes with --json (in the order given) and prints a markdown summary:
piwigo-s3upload against the best peer on every link and workload, CPU,
memory and context switches, the workers sweep and the CPU profile. Every
figure is the median of a tool's rounds (peak RSS: the largest), as in the
reports.

    python3 bench/summary.py results/*.json > results/summary.md

Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PEERS = ("s5cmd", "rclone", "aws")


def rate(row: dict | None) -> str:
    if not row or not row["ok"]:
        return "FAILED" if row else "—"
    return f"{row['files_s']:.1f} photos/s, {row['mb_s']:.1f} MB/s"


def pick(rows: list[dict], tool: str, variant: str | None = None) -> dict | None:
    """A tool's row for one variant, or its faster of default and tuned."""
    ok = [r for r in rows if r["tool"] == tool and r["ok"]
          and (r["variant"] == variant if variant else r["variant"] in ("default", "tuned"))]
    return min(ok, key=lambda r: r["wall"]) if ok else None


def best_peer(rows: list[dict], variant: str | None) -> dict | None:
    found = [r for r in (pick(rows, p, variant) for p in PEERS) if r]
    return min(found, key=lambda r: r["wall"]) if found else None


def rounds(run: dict) -> str:
    """How many rounds each row of a report is the median of."""
    n = run.get("rounds")
    if n is None:  # written before reports gave medians: the fastest round
        return "fastest of " + str(max((len(r.get("walls", [])) for r in run["rows"]), default=1))
    return str(n)


def ctx(row: dict | None) -> str:
    if not row or row.get("ctx_switches_per_gb") is None:
        return "—"
    return f"{row['ctx_switches_per_gb']:,.0f}"


def workers(row: dict) -> str:
    """upload.workers of one of piwigo-s3upload's rows ("workers = 8, ..." or
    'workers = "auto", ...'): "8" or "auto"."""
    return row["settings"].split("=")[1].split(",")[0].strip().strip('"')


def workers_order(n: str) -> tuple[int, int]:
    """auto first, then the counts in order."""
    return (0, 0) if not n.isdigit() else (1, int(n))


def ratio(ours: dict | None, peer: dict | None) -> str:
    if not ours or not peer:
        return "—"
    return f"**{peer['wall'] / ours['wall']:.2f}×**"


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    if not runs:
        print("usage: summary.py RESULT.json...", file=sys.stderr)
        return 2
    out = [
        "# Benchmark summary",
        "",
        f"piwigo-s3upload {runs[0].get('ours_version', '?')}.",
        "",
        "Throughput of piwigo-s3upload against the best peer (s5cmd, rclone, aws cli) on "
        "each link and workload; defaults against defaults, tuned against tuned. Ratio above "
        "1: piwigo-s3upload is faster. Each figure is from the **median** wall time of a tool's "
        "rounds (how many: the rounds column); every run is in the report named in the last "
        "column.",
        "",
        "| link | workload | rounds | piwigo-s3upload default | best peer default | ratio | "
        "piwigo-s3upload tuned | best peer tuned | ratio | report |",
        "|---|---|---:|---|---|---:|---|---|---:|---|",
    ]
    for run, path in zip(runs, paths):
        rows = run["rows"]
        d_ours, d_peer = pick(rows, "ours", "default"), best_peer(rows, "default")
        t_ours, t_peer = pick(rows, "ours", "tuned"), best_peer(rows, "tuned")
        out.append(
            f"| {run['link_name']} | {run['workload']} | {rounds(run)} | {rate(d_ours)} | "
            f"{d_peer['tool'] + ': ' if d_peer else ''}{rate(d_peer)} | {ratio(d_ours, d_peer)} | "
            f"{rate(t_ours)} | {t_peer['tool'] + ': ' if t_peer else ''}{rate(t_peer)} | "
            f"{ratio(t_ours, t_peer)} | {Path(path).with_suffix('.md').name} |"
        )

    out += [
        "",
        "CPU seconds per GB sent (user + system, the uploading process and its children; "
        "median of the rounds) and peak RSS (the largest of the rounds), each tool at its "
        "default settings:",
        "",
        "| link | workload | piwigo-s3upload | s5cmd | rclone | aws |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        cells = []
        for tool in ("ours",) + PEERS:
            r = pick(run["rows"], tool, "default")
            cells.append(f"{r['cpu_s_per_gb']:.2f} s/GB, {r['rss_mib']:.0f} MiB" if r else "—")
        out.append(f"| {run['link_name']} | {run['workload']} | " + " | ".join(cells) + " |")

    out += [
        "",
        "Context switches per GB sent (voluntary + involuntary, the uploading process and its "
        "children, from `time -v`; median of the rounds), each tool at its default settings:",
        "",
        "| link | workload | piwigo-s3upload | s5cmd | rclone | aws |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        cells = [ctx(pick(run["rows"], tool, "default")) for tool in ("ours",) + PEERS]
        out.append(f"| {run['link_name']} | {run['workload']} | " + " | ".join(cells) + " |")

    for run in runs:
        rows = [r for r in run["rows"] if r["tool"] == "ours" and r["ok"]]
        if not any(r["variant"].startswith("w") for r in rows):
            continue
        # One row per worker count (a sweep value may repeat default or tuned):
        # the faster median.
        by_count: dict[str, dict] = {}
        for r in rows:
            n = workers(r)
            if n not in by_count or r["wall"] < by_count[n]["wall"]:
                by_count[n] = r
        sweep = [by_count[n] for n in sorted(by_count, key=workers_order)]
        top = max(r["mb_s"] for r in sweep)
        out += [
            "",
            f"`upload.workers` at {run['link_name']}, {run['workload']}:",
            "",
            "| workers | photos/s | MB/s | of the best | peak RSS MiB | CPU s per GB | "
            "ctx switches per GB |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sweep:
            out.append(f"| {workers(r)} | {r['files_s']:.1f} | {r['mb_s']:.1f} | {r['mb_s'] / top:.0%} | "
                       f"{r['rss_mib']:.0f} | {r['cpu_s_per_gb']:.2f} | {ctx(r)} |")

    for run in runs:
        prof = run.get("profile")
        if prof:
            out += [
                "",
                f"CPU profile (`perf`, {run['link_name']}, {run['workload']}): md5 hashing is "
                f"**{prof['hashing_pct']:.1f} %** of piwigo-s3upload's CPU samples, the kernel "
                f"{prof['kernel_pct']:.1f} %.",
            ]

    checks = [(r["link_name"], r["link_check"]) for r in runs if r.get("link_check")]
    if checks:
        out += ["", "What the links measured before their runs (through the same proxy and veth):", ""]
        seen = set()
        for name, c in checks:
            if name in seen:
                continue
            seen.add(name)
            out.append(
                f"- {name}: RTT {c['rtt_median_ms']:.1f} ms median ({c['rtt_min_ms']:.1f} min), "
                f"connect + first reply {c['connect_and_first_reply_ms']:.1f} ms; payload "
                f"{c['rate_1_stream_mbit']:.0f} Mbit/s on one stream, "
                f"{c['rate_4_streams_mbit']:.0f} on four"
                + (f" ({c['rate_check_bytes'] / 1e6:.0f} MB each)" if c.get("rate_check_bytes") else "")
                + f"; proxy {c['proxy_cpu_s_per_gb']:.2f} "
                "CPU s per GB"
            )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
