"""Response times of the Jupyter server extension under load: a cold listing, a big plot, a long last line.

    python bench/server_load.py                    # all three phases, defaults below
    python bench/server_load.py --phase load --runs 200 --big-mb 50 --seconds 20
    python bench/server_load.py --phase plot       # time and server memory of one big run's plot.png
    python bench/server_load.py --phase tail       # list poll time with a 10 MB unterminated last line

Each phase fills its own temporary runs root, starts its own ``jupyter server`` on 127.0.0.1 (a
random free port, a random token, the ``nbdistill.server`` extension enabled) with
``NBDISTILL_RUNS`` pointing at that root, measures, and stops the server. Nothing leaves the
loopback interface; every phase is bounded in requests and in seconds.

``load``
    ``--runs`` runs, one of them with a ``--big-mb`` ``events.jsonl``. ``--concurrency`` client
    threads each cycle through ``GET /api/status`` (Jupyter's own), ``GET runs/<small id>`` (one
    run's info) and ``GET runs`` (the listing), until ``--requests`` answers or ``--seconds``. Every
    ``--swap-every`` seconds the big run's ``events.jsonl`` is replaced by a file of the same
    content but another inode (``link`` + ``rename``, no copying), so every listing is cold: the
    server must re-read the whole big file. Prints p50/p95/max per endpoint.
``plot``
    ``GET runs/<big id>/plot.png`` on a fresh server, then again after one more event (the first
    draw also imports the method's views, i.e. torch and Lightning, through the method registry):
    wall time, the server's resident memory before, and its peak (``VmHWM``, reset before each).
``tail``
    The runs root of ``load`` but the big run's events end with a ``--tail-mb`` line without its
    newline (a writer mid-line); ``--polls`` sequential ``GET runs``: p50/p95 of one poll.

Python's own ``PYTHONPATH`` reaches the server, so ``PYTHONPATH=/some/copy python bench/server_load.py``
measures another copy of the package (before/after comparisons).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

NAMES = ("train/loss", "train/kd", "train/ce", "val/student_acc", "val/teacher_acc", "train/lr")


def _line(step: int, name: str) -> str:
    return (
        json.dumps(
            {
                "step": step,
                "epoch": step // 100,
                "time": 1.7e9 + step,
                "kind": "scalar",
                "name": name,
                "value": 1.0 / (1 + step) + 0.001 * (step % 7),
            }
        )
        + "\n"
    )


def write_run(root: Path, run_id: str, started: float, n_events: int = 60, target_bytes: int = 0) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    info = {
        "id": run_id,
        "family": "kd",
        "method": "kd.hinton",
        "hparams": {"temperature": 4.0},
        "status": "finished",
        "error": None,
        "started": started,
        "ended": started + 60,
    }
    (folder / "run.json").write_text(json.dumps(info))
    with open(folder / "events.jsonl", "w") as f:
        if target_bytes:
            block = "".join(_line(s, n) for s in range(1000) for n in NAMES)
            written, base = 0, 0
            while written < target_bytes:
                chunk = block if base == 0 else "".join(_line(base + s, n) for s in range(1000) for n in NAMES)
                f.write(chunk)
                written += len(chunk)
                base += 1000
        else:
            f.write("".join(_line(s, NAMES[s % 2]) for s in range(n_events)))
    return folder


def fill_root(root: Path, runs: int, big_mb: float) -> tuple[str, str]:
    """``runs`` finished runs; returns ``(big run id, a small run id)``."""
    now = time.time()
    for i in range(runs - 1):
        write_run(root, f"run-{i:04d}", now - 10_000 + i)
    write_run(root, "big", now, target_bytes=int(big_mb * 2**20))
    return "big", "run-0000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``jupyter server`` on 127.0.0.1 serving ``root`` as the runs root."""

    def __init__(self, root: Path, workdir: Path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        config = workdir / "jupyter_server_config.json"
        config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"nbdistill.server": True}}}))
        env = {
            **os.environ,
            "NBDISTILL_RUNS": str(root),
            "JUPYTER_CONFIG_DIR": str(workdir / "config"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        }
        self.log = open(workdir / "server.log", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--config={config}",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={workdir}",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.get("api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None:
                    self.log.close()
                    tail = (workdir / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"the server exited:\n{tail}") from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not answer within 60 s")

    def get(self, path: str, timeout: float = 120) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def memory_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def percentiles(times: list[float]) -> str:
    if not times:
        return "no answers"
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"n={len(ms):4d}  p50={statistics.median(ms):8.1f} ms  p95={p95:8.1f} ms  max={ms[-1]:8.1f} ms"


def swap_inode(path: Path, spare: Path) -> Path:
    """Put ``spare``'s inode at ``path`` (same content); returns the old inode's new name as the next spare."""
    old = path.with_name(f"{path.name}.{secrets.token_hex(4)}")
    os.link(path, old)
    os.replace(spare, path)
    return old


def phase_load(args, workdir: Path) -> None:
    root = workdir / "runs"
    big, small = fill_root(root, args.runs, args.big_mb)
    events = root / big / "events.jsonl"
    spare = root / big / "events.spare"
    shutil.copyfile(events, spare)
    server = Server(root, workdir)
    endpoints = {"status": "api/status", "run info": f"nbdistill/api/runs/{small}", "list": "nbdistill/api/runs"}
    times: dict[str, list[float]] = {k: [] for k in endpoints}
    errors: dict[str, int] = {k: 0 for k in endpoints}
    stop = threading.Event()
    count = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        keys = list(endpoints)
        i = k
        while not stop.is_set():
            key = keys[i % len(keys)]
            i += 1
            t0 = time.perf_counter()
            try:
                server.get(endpoints[key])
            except (OSError, urllib.error.URLError):
                with lock:
                    errors[key] += 1
                continue
            with lock:
                times[key].append(time.perf_counter() - t0)
                count[0] += 1
                if count[0] >= args.requests:
                    stop.set()

    def swapper() -> None:
        nonlocal spare
        while not stop.wait(args.swap_every):
            spare = swap_inode(events, spare)

    try:
        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.concurrency)]
        threads.append(threading.Thread(target=swapper, daemon=True))
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        stop.wait(args.seconds)
        stop.set()
        for t in threads:
            t.join(130)
        wall = time.perf_counter() - t0
    finally:
        server.stop()
    print(
        f"load: {args.runs} runs, one of {args.big_mb:g} MB (inode replaced every {args.swap_every:g} s), "
        f"concurrency {args.concurrency}, {wall:.1f} s"
    )
    for key in endpoints:
        print(f"  {key:9s} {percentiles(times[key])}  errors={errors[key]}")


def _plot_once(server: Server, folder: Path) -> tuple[float, int, int, int]:
    """One plot.png of run ``folder``: ``(seconds, PNG bytes, RSS before, peak RSS during)`` (kB)."""
    try:  # restart the peak (VmHWM) at the current RSS (Linux >= 4.0), so the peak is this request's
        Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")
    except OSError:
        pass
    rss = server.memory_kb("VmRSS")
    t0 = time.perf_counter()
    png = server.get(f"nbdistill/api/runs/{folder.name}/plot.png")
    return time.perf_counter() - t0, len(png), rss, server.memory_kb("VmHWM")


def phase_plot(args, workdir: Path) -> None:
    root = workdir / "runs"
    folder = write_run(root, "big", time.time(), target_bytes=int(args.big_mb * 2**20))
    server = Server(root, workdir)
    try:
        first = _plot_once(server, folder)
        with open(folder / "events.jsonl", "a") as f:  # a new event: the cached PNG is stale, drawn again
            f.write(_line(10**7, "train/loss"))
        second = _plot_once(server, folder)
    finally:
        server.stop()
    for label, (wall, size, rss, peak) in (("first (imports the views)", first), ("second (after one more event)", second)):
        print(
            f"plot: {args.big_mb:g} MB run, {label}: {wall:.2f} s, {size} bytes of PNG; server RSS before "
            f"{rss / 1024:.0f} MB, peak during {peak / 1024:.0f} MB (+{(peak - rss) / 1024:.0f} MB)"
        )


def phase_tail(args, workdir: Path) -> None:
    root = workdir / "runs"
    now = time.time()
    for i in range(args.runs - 1):
        write_run(root, f"run-{i:04d}", now - 10_000 + i)
    folder = write_run(root, "tail", now)
    with open(folder / "events.jsonl", "a") as f:
        f.write('{"step": 1, "kind": "table", "name": "big", "rows": "' + "x" * int(args.tail_mb * 2**20))
    server = Server(root, workdir)
    times = []
    try:
        server.get("nbdistill/api/runs")  # the first listing reads everything once
        for _ in range(args.polls):
            t0 = time.perf_counter()
            server.get("nbdistill/api/runs")
            times.append(time.perf_counter() - t0)
    finally:
        server.stop()
    print(f"tail: {args.runs} runs, one ending in a {args.tail_mb:g} MB unterminated line; list poll {percentiles(times)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("all", "load", "plot", "tail"), default="all")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--big-mb", type=float, default=50)
    parser.add_argument("--tail-mb", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20, help="longest the load phase runs")
    parser.add_argument("--requests", type=int, default=1500, help="most answers the load phase waits for")
    parser.add_argument("--swap-every", type=float, default=1.0)
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args()
    import nbdistill.server

    print(f"nbdistill.server from {Path(nbdistill.server.__file__).parent}")
    phases = {"load": phase_load, "plot": phase_plot, "tail": phase_tail}
    for name, phase in phases.items():
        if args.phase in ("all", name):
            with tempfile.TemporaryDirectory(prefix=f"nbdistill-bench-{name}-") as tmp:
                phase(args, Path(tmp))


if __name__ == "__main__":
    main()
