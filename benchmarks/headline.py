"""The headline table: every shipped artifact benched on this machine's CPU, as Markdown, JSON and a plot.

    python benchmarks/headline.py models/mnist models/fashion_mnist --data-dir DIR --threads 1

Same code path as `edgecnn bench` (accuracy on the whole test split, agreement with the Keras model, load and
first-call time, p50/p99, GMAC/s, peak RSS). Writes benchmarks/results/headline.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgecnn.deploy.bench import bench_paths
from edgecnn.deploy.report import report, write_markdown, write_plot
from edgecnn.deploy.targets import resolve_target

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    target = resolve_target("cpu", args.threads)
    rows = bench_paths(args.run_dirs, target, warmup=30, runs=args.runs, data_dir=args.data_dir)  # "mnist/..." rows
    RESULTS.mkdir(exist_ok=True)
    title = f"Shipped models on {target.label}, batch 1"
    (RESULTS / "headline.json").write_text(json.dumps(report(rows, target, 30, args.runs), indent=2) + "\n")
    write_markdown(rows, RESULTS / "headline.md", title)
    write_plot(rows, RESULTS / "headline.png", title)
    print((RESULTS / "headline.md").read_text())


if __name__ == "__main__":
    main()
