"""The renderer's worker: lowered priority, resets that never wait, and a final figure drawn without it."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import nbdistill as nd
from nbdistill.core.views import views_for
from nbdistill.widgets.render import Renderer

PNG = b"\x89PNG\r\n\x1a\n"


def scalar(name, step, value):
    return {"step": step, "epoch": 0, "time": 0.0, "kind": "scalar", "name": name, "value": value}


def niceness(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads the priority from /proc")
def test_the_worker_lowers_its_priority_once_started():
    renderer = Renderer(figsize=(4, 2), dpi=30, nice=7)
    try:
        renderer.reset("kd.hinton")
        assert renderer.draw([scalar("train/loss", 1, 1.0)]).startswith(PNG)  # it has answered: started
        assert niceness(renderer._proc.pid) == min(19, os.nice(0) + 7)
    finally:
        renderer.close()


def test_a_reset_never_waits_for_a_draw_in_flight():
    renderer = Renderer(figsize=(4, 2), dpi=30, process=False)
    renderer.reset("kd.hinton")
    renderer._lock.acquire()  # as a draw in flight does
    try:
        done = threading.Event()
        threading.Thread(target=lambda: (renderer.reset("kd.student_only"), done.set()), daemon=True).start()
        assert done.wait(30)
        assert renderer.views == views_for("kd.hinton")  # not applied yet: it waits for the next draw
    finally:
        renderer._lock.release()
    events = [scalar("train/loss", s, 1.0 / s) for s in range(1, 5)]
    assert renderer.draw(events).startswith(PNG)
    assert renderer.views == views_for("kd.student_only") and len(renderer._local_log) == len(events)


def test_draw_local_draws_every_view_in_the_calling_thread():
    renderer = Renderer(figsize=(4, 2), dpi=30, process=False)
    events = [scalar("train/loss", s, 1.0 / s) for s in range(1, 5)]
    assert renderer.draw_local(events, views_for("kd.hinton"), "final").startswith(PNG)
    assert renderer.final_cost > 0 and len(renderer._local_log) == 0  # the live state is untouched


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_run_ends_with_its_final_figure_while_the_worker_gets_no_cpu(tmp_path):
    """A busy machine may starve the worker (it runs at a lowered priority): the run still ends,
    with its final figure, drawn by the training thread; the worker's late frame never replaces it."""
    panel = nd.panel(
        "kd",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        max_epochs=2,
        runs_root=tmp_path / "runs",
        redraw_hz=20.0,
    )
    pid = panel.renderer._proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        panel.start()
        run = panel.wait(timeout=240)
        assert not panel.running and run is not None and run.status == "finished"
        assert panel._state.final_drawn and panel.redraws == 1 and panel.png.startswith(PNG)
        final = panel.png
        os.kill(pid, signal.SIGCONT)  # its live frame may come now: it is dropped
        panel._state.ticker.join(60)
        assert panel.png == final and panel.redraws == 1
    finally:
        os.kill(pid, signal.SIGCONT)
        panel.close()
