"""Executes notebooks in the `pcam-rust` kernel through the Jupyter kernel protocol
(jupyter_client, via nbclient), one kernel per notebook, and with --rerun K re-executes a
seeded random selection of K code cells afterwards, in random order, in the same kernel — as
a person stepping back through a notebook would — and fails when a re-executed cell errs,
shows other outputs than its first execution, or changes an asset.

  nbexec.py --inplace NB...               outputs written into the notebooks
  nbexec.py --out DIR [--rerun K] NB...   executed copies written to DIR
  nbexec.py --warm NB [--record CASE]     start a kernel, run NB's setup cell (its first code
                                          cell) and report both times: what `make lab` and
                                          `make notebooks` do first, so that the notebook a
                                          person opens finds target/evcxr compiled

Re-execution rules:
  * The first code cell (`:dep pcam …`, the setup cell) is never picked: the rule is "any
    cell, in any order, after the setup cell".
  * Outputs are compared after joining consecutive stream chunks; execution counts and
    output metadata are ignored. A cell whose output is a measurement of time or speed says
    so in its metadata, {"pcam": {"volatile": "why"}}: for it only the kinds of output
    (stream, table, figure) are compared, and its assets fall under check-assets' timing
    tolerance like everywhere else.
  * Assets: the assets folder (PCAM_ASSETS_DIR, else assets/) is copied after the first
    pass and compared after the re-executions with `pcam report check-assets
    --same-machine` (same kernel, same machine: every exact and training-derived asset byte
    for byte, timing values within their tolerance).
The selection is random.Random(f"{seed}/{notebook file name}"); the seed is printed, and
PCAM_RERUN_SEED / --rerun-seed picks another."""
import argparse
import copy
import glob
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(msg):
    print(f"[nbexec] {msg}", flush=True)


def cell_name(nb, index):
    return f"cell {index} ({nb.cells[index].get('id', '?')})"


def text(x):
    """nbformat keeps multi-line strings as lists of lines on disk."""
    return "".join(x) if isinstance(x, list) else str(x)


def normalise(outputs, kinds_only=False):
    """Outputs as comparable tuples, execution counts and metadata dropped. A run of
    consecutive stream outputs is one segment whose text is joined per stream name, stdout
    before stderr: evcxr forwards the two streams separately, so how their chunks interleave
    may differ from one execution to the next while what each says does not."""
    out = []
    for o in outputs:
        t = o["output_type"]
        if t == "stream":
            if not out or out[-1][0] != "streams":
                out.append(("streams", {}))
            seg = out[-1][1]
            seg[o["name"]] = seg.get(o["name"], "") + text(o["text"])
        elif t in ("execute_result", "display_data"):
            data = o.get("data", {})
            out.append(("data", tuple(sorted(data)), tuple(text(data[k]) for k in sorted(data))))
        elif t == "error":
            out.append(("error", o.get("ename"), o.get("evalue")))
    out = [x for o in out for x in ([("stream", n, o[1][n]) for n in sorted(o[1])] if o[0] == "streams" else [o])]
    if kinds_only:
        return [(o[0], o[1]) for o in out]
    return out


def first_difference(a, b, first="first", second="on re-execution"):
    """One line saying where two normalised output lists part."""
    if len(a) != len(b):
        return f"{len(a)} outputs {first}, {len(b)} {second}"
    for k, (x, y) in enumerate(zip(a, b)):
        if x == y:
            continue
        if x[:2] != y[:2]:
            return f"output {k}: {x[:2]} {first}, {y[:2]} {second}"
        if x[0] == "data":  # the first media type that differs
            mime, xs, ys = next((m, a, b) for m, a, b in zip(x[1], x[2], y[2]) if a != b)
            x = (x[0], mime)
        else:
            xs, ys = str(x[2]), str(y[2])
        xl, yl = xs.splitlines(), ys.splitlines()
        for i, (p, q) in enumerate(zip(xl, yl)):
            if p != q:
                return f"output {k} ({x[1]}), line {i + 1}: {p[:160]!r} {first}, {q[:160]!r} {second}"
        return f"output {k} ({x[1]}): {len(xl)} lines {first}, {len(yl)} {second}"
    return "no difference"


def execute(path, kernel, timeout, rerun, seed, out_dir, extra=()):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=timeout, record_timing=False,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    )
    problems = []
    started = time.time()
    with client.setup_kernel():
        info = client.wait_for_reply(client.kc.kernel_info())
        if info is not None and "language_info" in info["content"]:
            nb.metadata["language_info"] = info["content"]["language_info"]
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        except CellExecutionError as e:
            # into --out for inspection; never in place: the notebook would mix this run's
            # outputs above the failed cell with the committed ones below it
            if out_dir:
                save(nb, path, out_dir)
            raise SystemExit(f"[nbexec] {path}: {str(e).strip().splitlines()[-1][:300]}")
        say(f"{path}: {len(code)} code cells executed in {time.time() - started:.0f}s")
        named = [i for i in code[1:] if nb.cells[i].get("id") in extra]
        if (rerun > 0 or named) and len(code) > 1:
            problems += rerun_cells(client, nb, path, code[1:], rerun, seed, named)
    save(nb, path, out_dir)
    return problems


def assets_dir():
    return os.environ.get("PCAM_ASSETS_DIR") or os.path.join(ROOT, "assets")


def rerun_cells(client, nb, path, candidates, k, seed, named=()):
    rng = random.Random(f"{seed}/{os.path.basename(path)}")
    picks = rng.sample(candidates, min(k, len(candidates)))
    picks += [i for i in named if i not in picks]
    names = ", ".join(cell_name(nb, i) for i in picks)
    say(f"{path}: re-executing {names} (seed {seed})")
    before = tempfile.mkdtemp(prefix="pcam-rerun-assets-")
    problems = []
    try:
        shutil.rmtree(before)
        shutil.copytree(assets_dir(), before)
        started = time.time()
        for i in picks:
            cell = nb.cells[i]
            again = copy.deepcopy(cell)
            again.outputs = []
            where = f"{path} {cell_name(nb, i)}"
            try:
                client.execute_cell(again, i, execution_count=client.code_cells_executed + 1)
            except CellExecutionError as e:
                problems.append(f"{where}: fails on re-execution: {str(e).strip().splitlines()[-1][:300]}")
                continue
            finally:
                # nbclient puts the executed cell into the notebook: the first execution's
                # outputs are the ones saved
                nb.cells[i] = cell
            volatile = cell.metadata.get("pcam", {}).get("volatile")
            first = normalise(cell.outputs, kinds_only=bool(volatile))
            second = normalise(again.outputs, kinds_only=bool(volatile))
            if first != second:
                problems.append(f"{where}: other outputs on re-execution: {first_difference(first, second)}")
            else:
                say(f"{where}: same outputs on re-execution" + (f" (kinds only: {volatile})" if volatile else ""))
        say(f"{path}: {len(picks)} cells re-executed in {time.time() - started:.0f}s")
        check = subprocess.run(
            [os.path.join(ROOT, "target/release/pcam"), "report", "check-assets", "--assets", before,
             "--fresh", assets_dir(), "--same-machine", "--complete"],
            capture_output=True, text=True)
        if check.returncode != 0:
            problems.append(f"{path}: assets changed by re-executing {names}:\n{check.stdout}{check.stderr}".rstrip())
        else:
            say(f"{path}: assets unchanged by the re-executions")
    finally:
        shutil.rmtree(before, ignore_errors=True)
    return problems


def warm(path, kernel, record):
    """Starts a kernel as Jupyter does, executes the notebook's setup cell, and reports the
    kernel's start and the cell's time (the kernel's stderr, cargo's lines included, passes
    through; the prelude's progress lines arrive as the cell's stderr and are printed).
    With `record`, the times go into results/notebooks/startup.json under that case."""
    from jupyter_client.manager import start_new_kernel

    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code" and c.source.strip())
    t0 = time.time()
    km, kc = start_new_kernel(kernel_name=kernel, cwd=os.path.dirname(os.path.abspath(path)), startup_timeout=600)
    try:
        started = time.time() - t0
        say(f"kernel {kernel} started in {started:.1f}s; running the setup cell of {path}")
        t1 = time.time()
        mid = kc.execute(setup.source)
        status = None
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=10)
            except queue.Empty:
                if not km.is_alive():
                    raise SystemExit(f"[nbexec] the kernel died during the setup cell of {path} (its stderr is above)")
                continue
            if msg["parent_header"].get("msg_id") != mid:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                sys.stdout.write(content["text"])
                sys.stdout.flush()
            elif kind == "error":
                status = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        cell = time.time() - t1
        # evcxr compiles and links every cell, however small: what each costs once warm
        # (measured only when recorded)
        small = []
        for _ in range(3 if record else 0):
            t2 = time.time()
            kc.execute_interactive("1 + 1", timeout=600, output_hook=lambda msg: None)
            small.append(time.time() - t2)
        per_cell = sorted(small)[1] if small else None
    finally:
        km.shutdown_kernel(now=True)
    if status:
        raise SystemExit(f"[nbexec] the setup cell of {path} failed: {status}")
    deps = glob.glob(os.path.join(os.environ["EVCXR_TMPDIR"], "target/*/debug/deps"))
    rlibs = len([e for d in deps for e in os.scandir(d)
                 if e.name.endswith(".rlib") and e.stat().st_mtime >= t0])
    say(f"setup cell done in {cell:.1f}s ({rlibs} libraries compiled or copied into target/evcxr); "
        f"first result after {started + cell:.1f}s"
        + (f"; a one-line cell then takes {per_cell:.1f}s" if per_cell is not None else ""))
    if record:
        record_startup(record, started, cell, rlibs, per_cell)


def record_startup(case, started, cell, rlibs, per_cell):
    """One line per case in results/notebooks/startup.json (the prelude reads it by line)."""
    path = os.path.join(ROOT, "results/notebooks/startup.json")
    data = json.load(open(path)) if os.path.exists(path) else {"cases": {}}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    data["machine"] = f"{cpu}, {os.cpu_count()} cores"
    data["command"] = "scripts/notebooks.sh measure (see its header for the cases)"
    data["cases"][case] = {"kernel_start_seconds": round(started, 1), "setup_cell_seconds": round(cell, 1),
                           "first_result_seconds": round(started + cell, 1), "crates_built": rlibs,
                           "one_line_cell_seconds": round(per_cell, 1),
                           "date": time.strftime("%Y-%m-%d")}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = ["{", f'  "machine": {json.dumps(data["machine"])},', f'  "command": {json.dumps(data["command"])},',
             '  "cases": {']
    cases = sorted(data["cases"].items())
    for i, (k, v) in enumerate(cases):
        lines.append(f"    {json.dumps(k)}: {json.dumps(v)}" + ("," if i < len(cases) - 1 else ""))
    lines += ["  }", "}"]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    say(f"recorded as {case} in {os.path.relpath(path, ROOT)}")


def save(nb, path, out_dir):
    target = os.path.join(out_dir, os.path.basename(path)) if out_dir else path
    tmp = target + ".tmp"
    nbformat.write(nb, tmp)
    os.replace(tmp, target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--inplace", action="store_true", help="write outputs into the notebooks")
    where.add_argument("--out", help="write the executed notebooks into this folder")
    where.add_argument("--warm", action="store_true", help="run the first notebook's setup cell only")
    ap.add_argument("--record", help="with --warm: record the times under this case")
    ap.add_argument("--rerun-cells", default=os.environ.get("PCAM_RERUN_CELLS", ""),
                    help="cell ids re-executed besides the random ones (comma-separated)")
    ap.add_argument("--kernel", default=os.environ.get("PCAM_KERNEL", "pcam-rust"))
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    ap.add_argument("--rerun", type=int, default=0, help="code cells to re-execute per notebook")
    ap.add_argument("--rerun-seed", type=int, default=int(os.environ.get("PCAM_RERUN_SEED", "42")))
    ap.add_argument("notebooks", nargs="+")
    args = ap.parse_args()
    if args.warm:
        warm(args.notebooks[0], args.kernel, args.record)
        return
    extra = {c for c in args.rerun_cells.split(",") if c}
    problems = []
    for path in args.notebooks:
        problems += execute(path, args.kernel, args.timeout, args.rerun, args.rerun_seed, args.out, extra)
    for p in problems:
        print(f"[nbexec] {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    if args.rerun:
        say(f"{len(args.notebooks)} notebooks: re-executed cells gave the same outputs and assets")


if __name__ == "__main__":
    main()
