"""A notebook stepped through as JupyterLab steps through it: runs `make lab` on a free port
(PCAM_LAB_PORT), reads the URL and token it prints, loads the Lab page and the notebook's
page, finds the
`pcam-rust` kernel spec, opens a session on the notebook through the REST API, fetches the
notebook through the contents API, executes each code cell over the kernel's websocket
(Jupyter messaging protocol 5.3 on /api/kernels/<id>/channels) and reads the outputs back.
Fails unless every cell ran without an error, the outputs include an HTML table and a PNG
(decoded and checked), and every cell's outputs equal the expected ones (kinds only for
cells marked {"pcam": {"volatile": ...}}, as in nbexec.py).

  nbserver_check.py NOTEBOOK [--expect EXECUTED]
    NOTEBOOK  a path under the project, e.g. notebooks/q7_collaboration.ipynb
    EXECUTED  the same notebook executed by nbexec.py in this check (default: NOTEBOOK's
              committed outputs)

Assets the cells write go to PCAM_ASSETS_DIR when it is set (notebooks.sh check sets it to
its temporary assets folder), else to a temporary folder, never to assets/."""
import base64
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import websocket  # websocket-client, a jupyter_server dependency

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbexec import first_difference, normalise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = os.environ.get("PCAM_KERNEL", "pcam-rust")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def say(msg):
    print(f"[nbserver] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`make lab` — the command a person runs — on a free port; its printed URL gives the
    port and token."""

    def __init__(self, assets):
        self.port, self.token = free_port(), None
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="pcam-lab-", suffix=".log", delete=False)
        self.runtime = tempfile.mkdtemp(prefix="pcam-jupyter-runtime-")
        env = dict(os.environ, PCAM_ASSETS_DIR=assets, JUPYTER_RUNTIME_DIR=self.runtime,
                   PCAM_LAB_PORT=str(self.port))
        self.proc = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def request(self, method, path, body=None):
        req = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, r.headers.get("Content-Type", ""), raw

    def api(self, method, path, body=None):
        return json.loads(self.request(method, path, body)[2] or b"null")

    def wait_ready(self, limit=3600):
        """Waits for `make lab` to print its URL (after compiling pcam for the kernel if
        needed), then polls /api/status until the server answers; fails when the process
        exits first. The limit only ends a hang; a slow machine still gets there."""
        end = time.time() + limit
        pattern = re.compile(r"JupyterLab: (http://127\.0\.0\.1:(\d+)/lab/\S*\?token=(\w+))")
        while time.time() < end:
            if self.proc.poll() is not None:
                self.fail(f"make lab exited with {self.proc.returncode} before its server answered")
            if self.token is None:
                found = pattern.search(open(self.log.name).read())
                if found:
                    if int(found.group(2)) != self.port:
                        self.fail(f"make lab printed {found.group(1)}, not port {self.port} (PCAM_LAB_PORT)")
                    self.token, self.url = found.group(3), found.group(1)
                    say(f"make lab printed {self.url.split('?')[0]}?token=…")
                time.sleep(0.5)
                continue
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        self.fail(f"make lab did not answer on {self.base} within {limit}s")

    def fail(self, why):
        self.stop()
        sys.stdout.write(open(self.log.name).read()[-4000:])
        raise SystemExit(f"[nbserver] {why} (server log above)")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.runtime, ignore_errors=True)
        try:
            os.unlink(self.log.name)
        except FileNotFoundError:
            pass


def message(session, msg_type, content):
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
                   "username": "pcam", "version": "5.3",
                   "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
        "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": [],
    }


def execute(ws, session, code, limit):
    """Sends one execute_request; returns the cell's outputs in nbformat shape and the reply
    status, reading until the kernel is idle for it and the reply has come."""
    req = message(session, "execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    ws.send(json.dumps(req))
    mid = req["header"]["msg_id"]
    outputs, status, idle = [], None, False
    ws.settimeout(limit)
    while status is None or not idle:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != mid:
            continue
        kind, content = msg["header"]["msg_type"], msg["content"]
        if msg["channel"] == "shell" and kind == "execute_reply":
            status = content["status"]
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
        elif kind == "stream":
            outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
        elif kind in ("display_data", "execute_result"):
            outputs.append({"output_type": kind, "data": content["data"]})
        elif kind == "error":
            outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"]})
    return outputs, status


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--expect"):
        raise SystemExit(__doc__)
    rel = os.path.relpath(os.path.abspath(args[0]), ROOT)
    committed = json.load(open(args[2] if len(args) == 3 else os.path.join(ROOT, rel)))
    own_assets = not os.environ.get("PCAM_ASSETS_DIR")
    assets = tempfile.mkdtemp(prefix="pcam-nbserver-assets-") if own_assets else os.environ["PCAM_ASSETS_DIR"]
    server = Server(assets)
    sess = None
    try:
        server.wait_ready()
        page_path = server.url.split(str(server.port), 1)[1].split("?")[0]
        status, ctype, page = server.request("GET", page_path)
        if status != 200 or b"JupyterLab" not in page:
            server.fail(f"{page_path} answered {status} {ctype} without the JupyterLab page")
        specs = server.api("GET", "/api/kernelspecs")["kernelspecs"]
        if KERNEL not in specs:
            server.fail(f"kernel {KERNEL} not offered (found {sorted(specs)}); make lab registers it")
        nb = server.api("GET", f"/api/contents/{rel}?content=1&type=notebook")["content"]
        sess = server.api("POST", "/api/sessions", {
            "path": rel, "type": "notebook", "name": os.path.basename(rel), "kernel": {"name": KERNEL}})
        kid, session = sess["kernel"]["id"], uuid.uuid4().hex
        say(f"{server.base}: session on {rel}, kernel {KERNEL} ({kid[:8]})")
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/api/kernels/{kid}/channels?session_id={session}",
            header=[f"Authorization: token {server.token}"], timeout=60)
        problems, html, pngs = [], 0, 0
        started = time.time()
        cells = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        for i, cell in cells:
            outputs, status = execute(ws, session, "".join(cell["source"]), limit=3600)
            where = f"{rel} cell {i} ({cell.get('id')})"
            if status != "ok":
                problems.append(f"{where}: {status}: {[o for o in outputs if o['output_type'] == 'error']}")
                break
            for o in outputs:
                data = o.get("data", {})
                html += "<table" in data.get("text/html", "")
                if "image/png" in data:
                    if not base64.b64decode(data["image/png"]).startswith(PNG_MAGIC):
                        problems.append(f"{where}: image/png output is not a PNG")
                    pngs += 1
            volatile = cell.get("metadata", {}).get("pcam", {}).get("volatile")
            mine = normalise(outputs, kinds_only=bool(volatile))
            theirs = normalise(committed["cells"][i].get("outputs", []), kinds_only=bool(volatile))
            if mine != theirs:
                problems.append(f"{where}: outputs differ from the expected ones: {first_difference(theirs, mine, 'expected', 'through the server')}")
        ws.close()
        if not problems and (html == 0 or pngs == 0):
            problems.append(f"{rel}: expected an HTML table and a PNG among the outputs, got {html} tables and {pngs} PNGs")
        for p in problems:
            print(f"[nbserver] {p}", file=sys.stderr)
        if problems:
            raise SystemExit(1)
        say(f"{rel}: {len(cells)} cells executed through the server in {time.time() - started:.0f}s; "
            f"{html} HTML tables and {pngs} PNGs read back, every output as expected")
    finally:
        if sess is not None:  # the kernel goes with its session, whatever happened above
            try:
                server.api("DELETE", f"/api/sessions/{sess['id']}")
            except (urllib.error.URLError, ConnectionError) as e:
                say(f"could not end the session: {e}")
        server.stop()
        if own_assets:
            shutil.rmtree(assets, ignore_errors=True)


if __name__ == "__main__":
    main()
