"""Plot the scale benchmark's curves (BENCHMARKS.md, issue 18) from `scale.py measure` reports.

    python benchmarks/scale_plot.py --out benchmarks/plots/scale.png \
        --series "learned, HNSW=out/scale/r2000-faiss.json,out/scale/r9500-faiss.json" ...

Each --series is "label=file,file,..." ("label:hybrid=..." plots the report's hybrid hit rates,
"label!cpu=..." only its CPU: a replicated catalog's hit rates mean nothing);
the left panel is top-10 against catalog size, the right one query CPU p50 (ms).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def table_row(r: dict) -> str:
    """One markdown row of a `scale.py measure` report."""
    def pp(d: dict | None) -> str:
        return f"{d['p50']:.0f} / {d['p95']:.0f}" if d else "-"

    h = r.get("hybrid")
    real = r["songs"] - r.get("distractor_copies", 0)
    ram = r.get("ram_bytes_per_song")
    return " | ".join([
        f"| {r['songs']:,} ({real:,} real)", r["store"] + (" (mmap)" if r.get("mmap_sequences") else ""),
        f"{r['learned']['top1']:.2f} / {r['learned']['top10']:.2f}",
        f"{h['top1']:.2f} / {h['top10']:.2f}" if h else "-",
        f"{r['true_song_in_candidates']['@200']:.2f}",
        pp(r["ann_ms"]), pp(r["rerank_ms"]), pp(r.get("dtw_ms")),
        f"{r['learned_cpu_ms']['p50']:.0f} / " + (f"{r['hybrid_cpu_ms']['p50']:.0f}" if h else "-"),
        f"{ram:,}" if ram else "-", f"{r.get('disk_bytes_per_song') or 0:,}",
        f"{r.get('build_s', '-')}", f"{r['peak_rss_mb']:.0f} / {r.get('rssanon_mb', 0):.0f}",
        f"{r['load_average_1min_at_end']} |"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", action="append", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--table", action="store_true", help="also print a markdown row per report")
    args = p.parse_args(argv)
    if args.table:
        seen = set()
        for spec in args.series:
            for f in spec.partition("=")[2].split(","):
                if f not in seen:
                    seen.add(f)
                    print(table_row(json.loads(Path(f).read_text())))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for spec in args.series:
        label, _, files = spec.partition("=")
        cpu_only = label.endswith("!cpu")  # hit rates not meaningful (replicated catalogs)
        label = label.removesuffix("!cpu")
        method = "hybrid" if label.endswith(":hybrid") else "learned"
        label = label.removesuffix(":hybrid")
        reports = sorted((json.loads(Path(f).read_text()) for f in files.split(",")), key=lambda r: r["songs"])
        sizes = [r["songs"] for r in reports]
        if not cpu_only:
            ax1.plot(sizes, [r[method]["top10"] for r in reports], "o-", label=label)
        cpu = [r["learned_cpu_ms"]["p50"] + (r["dtw_cpu_ms"]["p50"] if method == "hybrid" else 0)
               for r in reports]
        ax2.plot(sizes, cpu, "s--" if cpu_only else "o-", label=label)
    for ax, title in ((ax1, "top-10 (same 100 hums)"), (ax2, "query CPU ms p50 (1 thread)")):
        ax.set_xscale("log")
        ax.set_xlabel("catalog songs")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
