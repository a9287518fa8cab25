"""Did a change to `edgecnn.runtime` make the wrapper faster? This tree's `predict_proba` against another revision's.

    python benchmarks/wrapper_ab.py fe5ce15~1 runs/demo --processes 3 --runs 5000

Loads `edgecnn/runtime.py` as it was at REV (`git show`) beside this tree's, and times both wrappers and the bare
loop of `runtime_overhead.py` on each artifact of each run, at batch 1 on the same preprocessed input, call by call
in rotation, in a few fresh processes: whole runs on this host move by more than a microsecond-sized change, while
calls interleaved in one process share its state. Writes benchmarks/results/wrapper_ab.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from runtime_overhead import bare_call, interleaved_times  # this folder's, on the path when run as a script

from edgecnn.manifest import Manifest, tool_versions
from edgecnn.quiet import native_output_muted
from edgecnn.runtime import Classifier

RESULTS = Path(__file__).parent / "results"


def old_runtime_module(revision: str, folder: Path):
    """`edgecnn/runtime.py` at ``revision``, imported as a module of its own (it imports the rest of edgecnn)."""
    source = subprocess.run(["git", "show", f"{revision}:edgecnn/runtime.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parent).stdout
    path = folder / "runtime_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("runtime_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(path: Path, revision: str, folder: Path, threads: int, runs: int) -> dict:
    """One process's medians in microseconds: the bare loop, the wrapper at ``revision``, this tree's wrapper."""
    old = old_runtime_module(revision, folder)
    with native_output_muted():
        new_clf, old_clf = Classifier(path, threads=threads), old.Classifier(path, threads=threads)
    sample = np.random.default_rng(0).random((1, *new_clf.input_shape), dtype=np.float32)
    np.testing.assert_array_equal(new_clf.predict_proba(sample), old_clf.predict_proba(sample))  # same answer
    calls = [bare_call(new_clf, sample), lambda: old_clf.predict_proba(sample), lambda: new_clf.predict_proba(sample)]
    bare, before, after = (float(t) * 1e3 for t in np.median(interleaved_times(calls, runs), axis=0))
    return {"bare_us": bare, "revision_us": before, "tree_us": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare with, e.g. HEAD or a commit")
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5000, help="timed rounds per process")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per artifact")
    args = parser.parse_args()
    rows = []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:  # where each process writes the old module's source
        for run_dir in args.run_dirs:
            for artifact in Manifest.load(run_dir).artifacts:
                with context.Pool(1, maxtasksperchild=1) as pool:  # a fresh interpreter for every measurement
                    results = [pool.apply(measure, (run_dir / artifact.file, args.revision, Path(scratch),
                                                    args.threads, args.runs)) for _ in range(args.processes)]
                saved = [r["revision_us"] - r["tree_us"] for r in results]
                rows.append({"run": str(run_dir), "artifact": artifact.file, "processes": results,
                             "saved_us_median": round(float(np.median(saved)), 2),
                             "saved_us_min": round(min(saved), 2), "saved_us_max": round(max(saved), 2),
                             "faster_in": sum(s > 0 for s in saved)})
    document = {"revision": args.revision, "threads": args.threads, "runs": args.runs,
                "processes": args.processes, "batch": 1, "rows": rows, "versions": tool_versions()}
    (RESULTS / "wrapper_ab.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["| run | artifact | bare p50 (us) | wrapper at revision (us) | this tree (us) | saved per call (us), "
             "median and range | faster in |", "|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        med = {k: round(float(np.median([p[k] for p in r["processes"]])), 2) for k in r["processes"][0]}
        lines.append(f"| {r['run']} | {r['artifact']} | {med['bare_us']} | {med['revision_us']} | {med['tree_us']} "
                     f"| {r['saved_us_median']} ({r['saved_us_min']} to {r['saved_us_max']}) "
                     f"| {r['faster_in']} of {len(r['processes'])} |")
    (RESULTS / "wrapper_ab.md").write_text(
        f"# The runtime wrapper against its version at {args.revision}, batch 1, {args.threads} thread(s)\n\n"
        f"Command: `python benchmarks/wrapper_ab.py {args.revision} {' '.join(map(str, args.run_dirs))}`\n\n"
        f"Each artifact in {args.processes} fresh processes of {args.runs} rounds, the bare loop and both wrappers "
        "alternating call by call; medians per process, then over processes.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
