"""How long `edgecnn doctor` takes on a run, from the command line (Python start, dataset, both formats).

    python benchmarks/doctor.py models/mnist models/fashion_mnist --out benchmarks/results

Target (issue "Quantization doctor"): under 60 s per shipped model on a 2-core machine. Also records each int8
artifact's worst tensor and how many validation images flip, from the report the command writes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgecnn.deploy.targets import cpu_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="folder for doctor.json and doctor.md")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "edgecnn", "doctor", str(run), "--out", work, "--json"],
                           check=True, capture_output=True)
            seconds = time.perf_counter() - start
            report = json.loads((Path(work) / "doctor.json").read_text())
        for file, record in report["artifacts"].items():
            worst = record["tensors"][0]
            rows.append({"run": run.name, "artifact": file, "seconds": round(seconds, 2), "images": report["images"],
                         "flips": len(record["flips"]), "worst": worst["display"],
                         "worst_local_snr_db": worst["local_snr_db"]})
    cpu = cpu_info()
    lines = [f"# edgecnn doctor: wall time per run ({cpu['model']}, {', '.join(cpu['int8'])})", "",
             "| run | artifact | seconds (whole command) | images | flipped | worst tensor | its local SNR (dB) |",
             "|---|---|---:|---:|---:|---|---:|"]
    lines += [f"| {r['run']} | {r['artifact']} | {r['seconds']} | {r['images']} | {r['flips']} | {r['worst']} | "
              f"{r['worst_local_snr_db']} |" for r in rows]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "doctor.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=2))
        (args.out / "doctor.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
