"""One liveness rule for every reader (lost runs), the writer lock, the heartbeat, a failing disk,
and the runs root checked before training (issue 17 items 7 and 9, issue 10 section 2)."""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

import nbdistill as nd
from nbdistill import cli
from nbdistill.core import liveness, runfolder
from nbdistill.core import writer as writer_module
from nbdistill.core.liveness import RunLocked, acquire_writer_lock, effective_status, release_writer_lock
from nbdistill.core.logger import RunLogger, RunWriter
from nbdistill.core.runfolder import drop_partial_line, write_json_atomic


def _digits():
    return nd.data.Digits(n_train=100, batch_size=32)


def _student():
    torch.manual_seed(1)
    return nd.models.MLP(64, [8], 10)


@pytest.fixture(scope="module")
def teacher():
    return nd.zoo.teacher("digits-mlp")


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fake_run(root, run_id="r", **info):
    folder = root / run_id
    folder.mkdir(parents=True)
    base = {"id": run_id, "method": "kd.hinton", "status": "running", "started": time.time(), "host": liveness.this_host()}
    base.update(info)
    (folder / "run.json").write_text(json.dumps(base))
    return folder


# -- lost: the writer is gone ---------------------------------------------------------------------
def test_a_running_run_whose_writer_died_is_lost_for_every_reader(runs_root, capsys):
    folder = _fake_run(runs_root, pid=_dead_pid())
    run = nd.runs.open(folder)
    assert run.status == "lost" and run.info["status"] == "running"  # the raw word stays available
    assert [r.status for r in nd.runs.list()] == ["lost"]
    assert cli.main(["runs"]) == 0
    assert " lost " in capsys.readouterr().out


def test_a_run_whose_writer_holds_the_lock_is_running_and_a_released_lock_is_lost(runs_root):
    folder = _fake_run(runs_root, pid=os.getpid())
    fd = acquire_writer_lock(folder)
    try:
        assert nd.runs.open(folder).status == "running"
    finally:
        release_writer_lock(fd)
    assert nd.runs.open(folder).status == "lost"  # the lock file says more than a live pid


def test_on_another_host_a_stale_heartbeat_is_lost(runs_root):
    fresh = _fake_run(runs_root, "a", host="elsewhere", heartbeat=time.time())
    stale = _fake_run(runs_root, "b", host="elsewhere", heartbeat=time.time() - 2 * liveness.STALE_AFTER)
    unknown = _fake_run(runs_root, "c", host="elsewhere")
    assert nd.runs.open(fresh).status == "running"
    assert nd.runs.open(stale).status == "lost"
    assert nd.runs.open(unknown).status == "running"  # cannot be told: left as written
    assert effective_status(stale, {"status": "finished", "host": "elsewhere", "heartbeat": 0}) == "finished"


def test_after_kill_9_a_training_process_is_lost(runs_root):
    script = textwrap.dedent(
        f"""
        import time, nbdistill as nd
        nd.fit("kd.student_only", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=100, batch_size=32),
               max_epochs=10000, run_id="k", runs_root={str(runs_root)!r}, observers=[lambda e: time.sleep(0.01)])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (runs_root / "k" / "events.jsonl").exists() or (runs_root / "k" / "events.jsonl").stat().st_size == 0:
            assert proc.poll() is None and time.time() < deadline, "the training process did not start"
            time.sleep(0.05)
        run = nd.runs.open(runs_root / "k")
        assert run.status == "running" and run.info["pid"] == proc.pid
        assert isinstance(run.info["heartbeat"], float)
    finally:
        proc.kill()
        proc.wait()
    assert nd.runs.open(runs_root / "k").status == "lost"


# -- heartbeat --------------------------------------------------------------------------------------
def test_the_writer_refreshes_its_heartbeat_with_its_flushes(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "HEARTBEAT_EVERY", 0.0)
    writer = RunLogger(root=tmp_path, run_id="h", method="kd.hinton", flush_every=0.0).experiment
    first = json.loads((tmp_path / "h" / "run.json").read_text())["heartbeat"]
    time.sleep(0.01)
    writer.scalar("x", 1.0)
    second = json.loads((tmp_path / "h" / "run.json").read_text())["heartbeat"]
    assert second > first
    writer.close()


def test_no_heartbeat_write_between_due_times(tmp_path, monkeypatch):
    writer = RunLogger(root=tmp_path, run_id="h", method="kd.hinton", flush_every=0.0).experiment
    writes = []
    monkeypatch.setattr(runfolder, "write_json_atomic", lambda path, data: writes.append(path))
    for step in range(50):
        writer.scalar("x", 1.0, step=step)
    assert writes == []  # flushed 50 times; run.json untouched until HEARTBEAT_EVERY has passed
    writer.close()


# -- the writer lock --------------------------------------------------------------------------------
def test_two_writers_on_one_run_the_second_is_refused(tmp_path):
    first = RunLogger(root=tmp_path, run_id="x", method="kd.hinton")
    assert first.experiment.info["status"] == "running"
    second = RunLogger(root=tmp_path, run_id="x", method="kd.hinton", resume=True)
    with pytest.raises(RunLocked, match="run x is being written by another process or training right now"):
        _ = second.experiment
    first.close()
    assert second.experiment.info["pid"] == os.getpid()  # released at the end: now it may continue the run
    second.close()


def test_a_new_run_with_an_existing_run_id_is_refused_before_training(teacher, runs_root):
    nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, run_id="x")
    before = (runs_root / "x" / "run.json").read_bytes()
    with pytest.raises(nd.ConfigError, match=r"a run with id 'x' already exists in .*: pick another run_id, or continue"):
        nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, run_id="x")
    assert (runs_root / "x" / "run.json").read_bytes() == before
    with pytest.raises(nd.ConfigError, match="already exists"):  # the logger refuses it too (nbdistill fit, own Trainers)
        _ = RunLogger(root=runs_root, run_id="x").experiment


def test_the_same_run_id_twice_at_once_the_second_gets_a_clear_error(teacher, runs_root):
    started, release = threading.Event(), threading.Event()

    def hold(event):
        started.set()
        release.wait(60)

    result = {}

    def first():
        result["run"] = nd.fit(
            "kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, run_id="x", observers=[hold]
        )

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(60)
        with pytest.raises(nd.ConfigError, match="already exists"):
            nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, run_id="x")
        live = nd.runs.open(runs_root / "x")
        with pytest.raises(RunLocked, match="being written by another process or training right now"):
            nd.resume(live, teacher=teacher, student=_student(), data=_digits())
        assert live.status == "running"
    finally:
        release.set()
        thread.join(120)
    assert result["run"].status == "finished"


def test_the_lock_is_released_when_a_run_fails(teacher, runs_root):
    class NaNAfter(torch.nn.Module):
        def __init__(self, inner, after):
            super().__init__()
            self.inner, self.after, self.calls = inner, after, 0

        def forward(self, x):
            self.calls += self.training
            return self.inner(x) * (float("nan") if self.calls > self.after else 1.0)

    with pytest.raises(nd.TrainingFailed) as info:
        nd.fit("kd.hinton", teacher=teacher, student=NaNAfter(_student(), after=2), data=_digits(), max_epochs=2, run_id="f")
    assert info.value.run.status == "failed"
    fd = acquire_writer_lock(runs_root / "f")  # free again
    release_writer_lock(fd)


# -- a failing disk ---------------------------------------------------------------------------------
class _Disk:
    """A disk that fills up: once ``full``, writes that need new space raise ENOSPC (overwrites do not)."""

    def __init__(self):
        self.full = False

    def check(self):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")


class _FullFile(io.TextIOWrapper):
    disk: _Disk

    def write(self, text):
        self.disk.check()
        return super().write(text)


def _patch_disk(monkeypatch, disk):
    real_open, real_fdopen = open, os.fdopen

    def events_open(path, mode="r", **kw):
        f = real_open(path, mode.replace("b", "") + "b", buffering=0)
        wrapper = _FullFile(f, encoding=kw.get("encoding", "utf-8"), write_through=True)
        wrapper.disk = disk
        return wrapper

    def tmp_fdopen(fd, mode="r", *a, **kw):
        f = real_fdopen(fd, mode, *a, **kw)
        original = f.write

        def write(data):
            disk.check()
            return original(data)

        f.write = write
        return f

    monkeypatch.setattr(runfolder, "open", events_open, raising=False)
    monkeypatch.setattr(runfolder.os, "fdopen", tmp_fdopen)


def test_a_full_disk_fails_the_run_and_run_json_says_failed(teacher, runs_root, monkeypatch):
    disk = _Disk()
    _patch_disk(monkeypatch, disk)

    def fill(event):
        if event["step"] >= 10 and not disk.full:
            disk.full = True
            time.sleep(0.6)  # the next event flushes (every 0.5 s) onto the full disk

    with pytest.raises(nd.TrainingFailed, match="No space left on device") as info:
        nd.fit(
            "kd.hinton",
            teacher=teacher,
            student=_student(),
            data=_digits(),
            max_epochs=5,
            run_id="full",
            observers=[fill],
            checkpoint_every_epochs=None,
        )
    folder = runs_root / "full"
    info_json = json.loads((folder / "run.json").read_text())
    assert info_json["status"] == "failed" and "No space left on device" in info_json["error"]
    assert info.value.run is not None and info.value.run.status == "failed"
    assert not list(folder.glob(".tmp-*")), "temporary files are removed on failure"


def test_the_failed_status_is_kept_and_written_once_the_disk_has_room(teacher, runs_root, monkeypatch):
    disk = _Disk()
    _patch_disk(monkeypatch, disk)
    monkeypatch.setattr(runfolder, "write_json_in_place", lambda *a, **k: False)  # not even in place

    def fill(event):
        if event["step"] >= 10 and not disk.full:
            disk.full = True
            time.sleep(0.6)

    with pytest.raises(nd.TrainingFailed):
        nd.fit(
            "kd.hinton",
            teacher=teacher,
            student=_student(),
            data=_digits(),
            max_epochs=5,
            run_id="full",
            observers=[fill],
            checkpoint_every_epochs=None,
        )
    folder = runs_root / "full"
    assert json.loads((folder / "run.json").read_text())["status"] == "running"
    assert not list(folder.glob(".tmp-*"))
    disk.full = False
    writer_module._save_unsaved()  # what the process does when it exits
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


def test_write_json_atomic_removes_its_temporary_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    target.write_text('{"a": 1}')

    def fail(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runfolder.os, "replace", fail)
    with pytest.raises(OSError):
        write_json_atomic(target, {"a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"] and target.read_text() == '{"a": 1}'


def test_in_place_fallback_keeps_valid_json_within_the_old_size(tmp_path):
    target = tmp_path / "run.json"
    write_json_atomic(target, {"status": "running", "setting": {"x": "y" * 300}, "error": None})
    size = target.stat().st_size
    assert runfolder.write_json_in_place(
        target, {"status": "failed", "setting": {"x": "y" * 300}, "error": "e" * 5000}, optional=("traceback", "setting")
    )
    assert target.stat().st_size == size
    info = json.loads(target.read_text())
    assert info["status"] == "failed" and info["error"].startswith("eee") and info["error"].endswith("…")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to mount a private tmpfs")
def test_a_real_full_tmpfs(tmp_path):
    """The issue's repro: a run on a tiny tmpfs (mounted in a private user/mount namespace)."""
    mount = tmp_path / "small"
    mount.mkdir()
    script = textwrap.dedent(
        f"""
        import json, os, pathlib, nbdistill as nd
        root = pathlib.Path({str(mount)!r})
        free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        (root / "filler").write_bytes(b"0" * (free - 32 * 1024))
        try:
            nd.fit("kd.student_only", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=100, batch_size=8),
                   max_epochs=200, runs_root=root / "runs", run_id="r", checkpoint_every_epochs=None,
                   trainer_kwargs={{"log_every_n_steps": 1}})
            outcome = "finished?"
        except nd.TrainingFailed as exc:
            outcome = "TrainingFailed"
        folder = root / "runs" / "r"
        print("RESULT", json.dumps({{"outcome": outcome, "status": json.loads((folder / "run.json").read_text())["status"],
                                    "tmp": [p.name for p in folder.glob(".tmp-*")]}}))
        """
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=2m tmpfs "{mount}" && exec "{sys.executable}" -c "$0"', script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if "mount" in proc.stderr and "RESULT" not in proc.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()[:200]}")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    result = json.loads(line[len("RESULT ") :])
    assert result == {"outcome": "TrainingFailed", "status": "failed", "tmp": []}


# -- a half-written last line -----------------------------------------------------------------------
def test_a_writer_drops_a_half_written_last_line_before_appending(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"half')
    assert drop_partial_line(path) == len(b'{"half')
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert drop_partial_line(path) == 0
    path.write_bytes(b"no newline at all")
    assert drop_partial_line(path) == len(b"no newline at all") and path.read_bytes() == b""
    path.write_bytes(b"x" * 200_000 + b"\n" + b"y" * 100_000)  # longer than one read chunk
    drop_partial_line(path)
    assert path.read_bytes() == b"x" * 200_000 + b"\n"


def test_continuing_a_run_onto_a_half_written_line_keeps_every_event(tmp_path):
    w = RunLogger(root=tmp_path, run_id="r", method="kd.hinton", flush_every=0.0).experiment
    w.scalar("x", 1.0, step=0)
    w.set_status("stopped")
    w.close()
    with open(tmp_path / "r" / "events.jsonl", "a") as f:
        f.write('{"step": 1, "epoch": 0, "time": 0, "kind": "scalar", "na')  # the killed writer's last words
    w = RunLogger(root=tmp_path, run_id="r", method="kd.hinton", flush_every=0.0, resume=True).experiment
    w.scalar("x", 2.0, step=2)
    w.close()
    lines = (tmp_path / "r" / "events.jsonl").read_text().splitlines()
    assert [json.loads(x)["value"] for x in lines] == [1.0, 2.0]


# -- the runs root ----------------------------------------------------------------------------------
def test_a_runs_root_that_is_a_file_is_refused_before_training(teacher, tmp_path):
    root = tmp_path / "a-file"
    root.write_text("")
    with pytest.raises(nd.ConfigError, match=f"the runs root {root} is a file, not a folder: pass runs_root="):
        nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, runs_root=root)
    with pytest.raises(nd.ConfigError, match=f"the runs root {root / 'runs'} lies under {root}, which is a file"):
        nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, runs_root=root / "runs")


def test_a_read_only_runs_root_is_refused_before_training(teacher, tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        if os.access(root, os.W_OK):  # root ignores permission bits: what os.access says is what we check
            real = os.access
            monkeypatch.setattr(runfolder.os, "access", lambda p, m: False if os.fspath(p) == str(root) else real(p, m))
        with pytest.raises(nd.ConfigError, match=f"the runs root {root / 'runs'} is not writable .*{root} is read-only"):
            nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, runs_root=root / "runs")
    finally:
        root.chmod(0o700)
    assert list(root.iterdir()) == []


def test_a_run_folder_that_cannot_be_written_is_a_config_error(teacher, tmp_path, monkeypatch):
    def refuse(self, *a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(RunWriter, "__init__", refuse)
    with pytest.raises(nd.ConfigError, match="cannot write the run folder .*Read-only file system"):
        nd.fit("kd.hinton", teacher=teacher, student=_student(), data=_digits(), max_epochs=1, runs_root=tmp_path / "runs")
