"""Did a change to `edgecnn.runtime.classifier` make the wrapper faster? This tree's `predict_proba` against another revision's.

    python benchmarks/wrapper_ab.py fe5ce15~1 runs/demo --processes 3 --runs 5000

Loads `edgecnn/runtime.py` as it was at REV (`git show`) beside this tree's, with the names it imports from
`edgecnn/preprocess.py` (the finite check) as they were at REV too, and times both wrappers and the bare
loop of `runtime_overhead.py`, each on an interpreter of its own, on each artifact of each run, at batch 1 on the
same preprocessed input, call by call in rotation, half the rounds in each order of the two wrappers, in a few fresh
processes: whole runs on this host move by more than a microsecond-sized change, while calls interleaved in one
process share its state. Run it against HEAD with the runtime unchanged (--name wrapper_ab_control) to see what
the method reads on equal code. Writes benchmarks/results/wrapper_ab.{json,md} (--name: another name).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# this folder's runtime_overhead.py, on the path when this file runs as a script
from runtime_overhead import bare_call, in_fresh_processes, interleaved_times

from edgecnn.common.native_logs import native_output_muted
from edgecnn.runtime.classifier import Classifier
from edgecnn.runtime.manifest import Manifest, tool_versions

RESULTS = Path(__file__).parent / "results"


def _module_at(revision: str, file: str, name: str, folder: Path):
    """``file`` as it was at ``revision``, imported as module ``name`` (it imports the rest of edgecnn)."""
    source = subprocess.run(["git", "show", f"{revision}:{file}"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parent).stdout
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def old_runtime_module(revision: str, folder: Path):
    """`edgecnn/runtime.py` at ``revision``, with what it takes from `edgecnn/preprocess.py` (the finite check, the
    preprocessing) at ``revision`` too."""
    import edgecnn.runtime.preprocess

    module = _module_at(revision, "edgecnn/runtime.py", "runtime_at_revision", folder)
    preprocess = _module_at(revision, "edgecnn/preprocess.py", "preprocess_at_revision", folder)
    for name, value in list(vars(module).items()):
        if value is getattr(edgecnn.runtime.preprocess, name, None) and hasattr(preprocess, name):
            setattr(module, name, getattr(preprocess, name))
    return module


def measure(path: Path, revision: str, folder: Path, threads: int, runs: int) -> dict:
    """One process's medians in microseconds: the bare loop, the wrapper at ``revision``, this tree's wrapper."""
    old = old_runtime_module(revision, folder)
    with native_output_muted():  # three interpreters: neither wrapper shares one with the bare loop
        new_clf, old_clf = Classifier(path, threads=threads), old.Classifier(path, threads=threads)
        sample = np.random.default_rng(0).random((1, *new_clf.input_shape), dtype=np.float32)
        bare = bare_call(Classifier(path, threads=threads), sample, threads)
    np.testing.assert_array_equal(new_clf.predict_proba(sample), old_clf.predict_proba(sample))  # same answer
    before, after = (lambda: old_clf.predict_proba(sample)), (lambda: new_clf.predict_proba(sample))
    # rotation keeps the cyclic order, so half the rounds run bare, old, new and half bare, new, old: each wrapper
    # follows the bare loop, and the other wrapper, equally often
    first = np.median(interleaved_times([bare, before, after], runs // 2), axis=0)
    second = np.median(interleaved_times([bare, after, before], runs - runs // 2), axis=0)[[0, 2, 1]]
    bare_us, before_us, after_us = ((first + second) / 2 * 1e3).tolist()
    return {"bare_us": bare_us, "revision_us": before_us, "tree_us": after_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="the git revision to compare with, e.g. HEAD or a commit")
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5000, help="timed rounds per process")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per artifact")
    parser.add_argument("--name", default="wrapper_ab", help="results file name, without suffix (a control run "
                        "against HEAD, where the runtime is unchanged, shows what the method reads on equal code)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:  # where each process writes the old module's source
        for run_dir in args.run_dirs:
            for artifact in Manifest.load(run_dir).artifacts:
                results = in_fresh_processes(measure, (run_dir / artifact.file, args.revision, Path(scratch),
                                                       args.threads, args.runs), args.processes)
                saved = [r["revision_us"] - r["tree_us"] for r in results]
                rows.append({"run": str(run_dir), "artifact": artifact.file, "processes": results,
                             "saved_us_median": round(float(np.median(saved)), 2),
                             "saved_us_min": round(min(saved), 2), "saved_us_max": round(max(saved), 2),
                             "faster_in": sum(s > 0 for s in saved)})
    document = {"revision": args.revision, "threads": args.threads, "runs": args.runs,
                "processes": args.processes, "batch": 1, "rows": rows, "versions": tool_versions()}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = ["| run | artifact | bare p50 (us) | wrapper at revision (us) | this tree (us) | saved per call (us), "
             "median and range | faster in |", "|---|---|---:|---:|---:|---|---:|"]
    for r in rows:
        med = {k: round(float(np.median([p[k] for p in r["processes"]])), 2) for k in r["processes"][0]}
        lines.append(f"| {r['run']} | {r['artifact']} | {med['bare_us']} | {med['revision_us']} | {med['tree_us']} "
                     f"| {r['saved_us_median']} ({r['saved_us_min']} to {r['saved_us_max']}) "
                     f"| {r['faster_in']} of {len(r['processes'])} |")
    (RESULTS / f"{args.name}.md").write_text(
        f"# The runtime wrapper against its version at {args.revision}, batch 1, {args.threads} thread(s)\n\n"
        f"Command: `python benchmarks/wrapper_ab.py {args.revision} {' '.join(map(str, args.run_dirs))}"
        f"{'' if args.name == 'wrapper_ab' else f' --name {args.name}'}`\n\n"
        f"Each artifact in {args.processes} fresh processes of {args.runs} rounds, the bare loop and both wrappers "
        "alternating call by call (each on its own interpreter, half the rounds in each order of the two wrappers); "
        "medians per process, then over processes.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
