"""Fails when an executed notebook has an unexecuted code cell, an error output, an
error printed by a cell, or an embedded image over 200 KB. Usage: nbcheck.py NB..."""
import base64
import json
import sys

MAX_IMAGE = 200_000
problems = []
for path in sys.argv[1:]:
    nb = json.load(open(path))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or not "".join(cell["source"]).strip():
            continue
        where = f"{path} cell {i}"
        if cell.get("execution_count") is None:
            problems.append(f"{where}: not executed")
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"{where}: error output {out.get('ename')}: {out.get('evalue')}")
            if out["output_type"] == "stream" and out.get("name") == "stderr" and "error" in "".join(out["text"]).lower():
                problems.append(f"{where}: error on stderr: {''.join(out['text'])[:200]!r}")
            png = out.get("data", {}).get("image/png")
            if png and len(base64.b64decode("".join(png))) > MAX_IMAGE:
                problems.append(f"{where}: embedded PNG over {MAX_IMAGE} bytes")
for p in problems:
    print("[nbcheck]", p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"[nbcheck] {len(sys.argv) - 1} notebooks: all cells executed, no errors, images <= 200 KB")
