"""The tables the CLI verbs print, built in one place from what the API functions return.

    console.print(export_table(entries, "exported to runs/demo"))

The bench table, with its CSV and Markdown twins, is :func:`edgecnn.deploy.report.print_table`.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text


def title(text: str) -> Text:
    """A table title in the theme's style, as text: wherever the user's names show (a folder, class or file called
    "[x]"), they are never read as rich markup."""
    return Text(text, style="table.title")


def train_table(summary: dict) -> Table:
    """Per-class precision, recall and F1 on the test split, of :func:`edgecnn.api.train`'s summary."""
    table = Table(title=title(f"{summary['source']['arch']} on {summary['dataset']}: test split, per class"))
    for name in ("Class", "Precision (%)", "Recall (%)", "F1 (%)", "Support"):
        table.add_column(name, justify="left" if name == "Class" else "right")
    for c in summary["metrics"]["classes"]:
        table.add_row(Text(c["label"]), *(f"{c[k]:.2f}" for k in ("precision", "recall", "f1")), str(c["support"]))
    return table


def models_table(rows: list[dict], caption: str) -> Table:
    """The architectures of ``edgecnn models``: parameters, MACs, int8 weight size and a description."""
    table = Table(title=caption)
    # numbers whole and a two-line header, so that at 80 columns the description keeps the room to wrap in words
    for name in ("Arch", "Parameters", "MACs", "int8 weights\n(KB)"):
        table.add_column(name, justify="left" if name == "Arch" else "right", no_wrap=True)
    table.add_column("Description", overflow="fold")
    for r in rows:
        if r["error"]:
            table.add_row(r["arch"], "-", "-", "-", Text.assemble(f"{r['summary']} (", (r["error"], "red"), ")"))
        else:
            table.add_row(r["arch"], f"{r['params']:,}", f"{r['macs']:,}", f"{r['params'] / 1024:.1f}", r["summary"])
    return table


def export_table(entries: list, caption: str) -> Table:
    """The artifacts :func:`edgecnn.api.export` wrote, with their verification against the Keras model."""
    table = Table(title=title(caption))
    # two-line headers: the table fits 80 columns with every file name whole
    for name in ("Artifact", "Precision", "Input", "Size\n(KB)", "Agree\n(%)", "Max\n|diff|", "Val acc\n(%)"):
        table.add_column(name, justify="left" if name in ("Artifact", "Precision", "Input") else "right",
                         no_wrap=name == "Artifact")
    for e in entries:
        v = e.verification
        table.add_row(e.file, e.precision, e.input_dtype, f"{e.bytes / 1024:.1f}", f"{v['agreement']:.2f}",
                      f"{v['max_abs_diff']:.4f}", f"{v['accuracy']:.2f}")
    return table


def predict_table(results: list[dict], caption: str) -> Table:
    """The top-k labels of :func:`edgecnn.api.predict`, one row an image; unreadable ones marked in red."""
    table = Table(title=title(caption))
    table.add_column("Image", overflow="fold")  # a long path wraps, and keeps the file name that tells rows apart
    ranks = max(len(r["top"]) for r in results if "top" in r)  # <= classes
    for rank in range(1, ranks + 1):
        table.add_column(f"#{rank}")
    for r in results:
        cells = ([Text(f"unreadable: {r['error']}", "red")] if "error" in r else
                 [Text(f"{t['label']} ({t['score']:.3f})") for t in r["top"]])
        table.add_row(Text(r["image"]), *cells)
    return table


def info_tables(info: dict) -> tuple[Table, Table]:
    """The tensors and the operators of :func:`inspect_artifact`'s ``info``, as two tables."""
    tensors = Table(title="tensors")
    for name in ("Role", "Name", "dtype", "Shape", "Scale, zero point"):
        # a long tensor name folds onto more lines rather than losing its end; the JSON has the scale's every digit
        tensors.add_column(name, overflow="fold" if name == "Name" else "ellipsis", no_wrap=name != "Name")
    for role in ("inputs", "outputs"):
        for t in info[role]:
            quantization = "-" if t["quantization"] is None else "{:.6g}, {}".format(*t["quantization"])
            # Text, not markup: names and symbolic dimensions come from the (untrusted) file
            tensors.add_row(role[:-1], Text(t["name"]), Text(t["dtype"]), Text(str(t["shape"])), quantization)
    ops = Table(title="operators")
    ops.add_column("Operator")
    ops.add_column("Count", justify="right")
    for op, count in sorted(info["operators"].items(), key=lambda kv: -kv[1]):
        ops.add_row(Text(op), str(count))
    return tensors, ops


def check_table(rows: list[dict], caption: str) -> Table:
    """The rows of :func:`edgecnn.api.check`: each artifact in each runtime, with the runtime's error where it fails."""
    table = Table(title=title(caption))
    for name in ("Artifact", "Runtime", "Status", "Acc (%)", "Agree ref\n(%)", "Agree fp32\n(%)", "Arena\n(KB)",
                 "Flash\n(KB)"):
        table.add_column(name, justify="left" if name in ("Artifact", "Runtime", "Status") else "right")

    def cell(value, scale=1.0, digits=2):
        return "-" if value is None else f"{value / scale:.{digits}f}"

    for r in rows:
        status = Text(r["status"], "green" if r["status"] == "ok" else "red" if r["error"] and r["status"] !=
                      "not installed" else "yellow")
        if r["error"]:
            status.append(f": {r['error']}", "default")
        table.add_row(Text(r["artifact"]), r["runtime"], status, cell(r["accuracy"]), cell(r["agreement"]),
                      cell(r["float_agreement"]), cell(r["arena_bytes"], 1024, 1), cell(r["flash_bytes"], 1024, 1))
    return table


def doctor_table(file: str, record: dict, top: int) -> Table:
    """The ``top`` worst tensors of one artifact in :func:`edgecnn.api.doctor`'s report."""
    table = Table(title=title(f"{file}: int8 {record['int8_accuracy']:.2f}% vs float {record['float_accuracy']:.2f}%, "
                              f"{record['agreement']:.2f}% agreement, worst tensors first"))
    for name in ("Tensor", "Local SNR\n(dB)", "Channel\nSNR (dB)", "SNR (dB)", "Cosine", "Max |err|", "Codes\nused",
                 "Saturated"):
        table.add_column(name, justify="left" if name == "Tensor" else "right", overflow="fold")

    def share(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    for t in record["tensors"][:top]:
        table.add_row(Text(t["display"]), f"{t['local_snr_db']:.1f}", f"{t['channel_snr_db']:.1f}",
                      f"{t['snr_db']:.1f}", f"{t['cosine']:.4f}", f"{t['max_abs_error']:.4g}", share(t["codes_used"]),
                      share(t["saturation"]))
    return table


def sweep_table(entry) -> Table:
    """The calibration sweep behind an artifact ``export --max-drop`` chose, with the choice marked."""
    recipe = entry.recipe
    kept = recipe["int16_tensors"]
    caption = (f"{entry.file}: settings against float {recipe.get('max_drop')} points (validation), chosen: "
               + (f"the first, with 16-bit {', '.join(kept)}" if kept else "marked *"))
    table = Table(title=title(caption))
    for name in ("", "Setting", "Size (KB)", "Val acc (%)", "Agree (%)", "Drop (points)"):
        table.add_column(name, justify="left" if name in ("", "Setting") else "right")
    for row in recipe["sweep"]:
        mark = "*" if row["setting"] == recipe["setting"] and not kept else ""
        setting = ", ".join(f"{k} {v}" for k, v in row["setting"].items())
        table.add_row(mark, setting, f"{row['bytes'] / 1024:.1f}", f"{row['accuracy']:.2f}", f"{row['agreement']:.2f}",
                      f"{row['drop']:.2f}")
    return table


def capture_table(summary: dict) -> Table:
    """Images per class of :func:`edgecnn.api.capture`'s summary: saved now, and in the folder in all."""
    table = Table(title=title(f"{summary['out']}: {summary['saved']} images saved from {summary['frames']} frames "
                              f"({summary['fps']} frames/s), {summary['skipped']} skipped as unchanged"))
    for name in ("Class", "Saved now", "In the folder"):
        table.add_column(name, justify="left" if name == "Class" else "right")
    for label, counts in summary["classes"].items():
        table.add_row(Text(label), str(counts["saved"]), str(counts["total"]))
    return table
