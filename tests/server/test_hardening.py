"""Issue 17, items 1-6: no frozen server, no sticky 500, no 500 on edge input, no overwritten
notebook, no link followed out of a run folder, big runs read incrementally."""

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest
from server_api import API, get_json, raw, status_of
from tornado.httpclient import HTTPClientError

from nbdistill.server import plot as server_plot
from nbdistill.server import tutorials
from nbdistill.server.runindex import RunIndex

LINE = json.dumps({"step": 1, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": 2.0})


# 1. A listing held inside its read of a run's events holds up no other request.


def _fd_path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the events file of an fd through /proc")
async def test_a_listing_held_in_its_file_read_holds_up_no_other_request(jp_fetch, make_run, monkeypatch):
    make_run("slow", lines=[LINE])
    make_run("other", lines=[LINE])
    entered, release = threading.Event(), threading.Event()
    safety = threading.Timer(10, release.set)  # on a server that blocks its event loop, the test would hang
    real_fstat = os.fstat

    def held_fstat(fd, *args, **kwargs):
        # Whatever reads events.jsonl of run "slow" in a worker thread stops here, once, until released.
        if threading.current_thread() is not threading.main_thread() and not entered.is_set():
            if isinstance(fd, int) and _fd_path(fd).endswith("/slow/events.jsonl"):
                entered.set()
                release.wait()
        return real_fstat(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fstat", held_fstat)
    safety.start()
    try:
        listing = asyncio.ensure_future(get_json(jp_fetch, "runs"))
        for _ in range(400):
            if entered.is_set():
                break
            await asyncio.sleep(0.05)
        assert entered.is_set(), "the listing never read events.jsonl of run slow"
        status = json.loads((await jp_fetch("api", "status")).body)
        slow = await get_json(jp_fetch, "runs", "slow")
        other = await get_json(jp_fetch, "runs", "other")
        answered_while_held = not release.is_set()
    finally:
        release.set()
        safety.cancel()
    runs = {r["id"]: r for r in (await listing)["runs"]}
    assert answered_while_held, "/api/status or a run's info waited for the listing's file read"
    assert "started" in status
    assert slow["id"] == "slow" and slow["status"] == "running"
    assert other["events"] == 1 and other["metrics"] == {"train/loss": 2.0}
    assert runs["slow"]["events"] == runs["other"]["events"] == 1


# 2. Valid JSON of the wrong type: skipped and counted, or the run is "corrupt" with the reason.


async def test_wrong_types_never_break_the_listing_or_the_events(jp_fetch, make_run, runs_root):
    bad_lines = [
        LINE,
        '{"step": "abc", "epoch": 0, "time": 2.0, "kind": "scalar", "name": "train/loss", "value": 1.5}',
        '{"step": 3, "epoch": 0, "time": 3.0, "kind": "scalar", "name": ["a"], "value": 1.0}',
        '{"step": 4, "epoch": 0, "time": 4.0, "kind": "scalar", "name": "train/loss", "value": 1e999}',
        '{"step": 1e999, "epoch": "x", "time": 5.0, "kind": "scalar", "name": "train/loss", "value": "high"}',
        '{"step": 6, "kind": 7, "name": "train/loss", "value": 1.0}',
        "[1, 2, 3]",
        "[" * 100_000,
        '{"step": 7, "epoch": 0, "time": 7.0, "kind": "scalar", "name": "train/loss", "value": 0.5}',
        '{"step": 8, "epoch": 0, "time": 8.0, "kind": "histogram", "name": "h", "edges": [1'
        + "0" * 400
        + '.0, 1], "counts": [1]}',
    ]
    make_run("good", lines=[LINE])
    make_run("bad-events", lines=bad_lines)
    make_run("yesterday", status="finished", started="yesterday", ended=[1], family=3, lines=[LINE])
    make_run("huge-pid", pid=10**20, host=os.uname().nodename, lines=[LINE])
    make_run("float-pid", pid=1e20, lines=[LINE])
    folder = make_run("events-folder")
    (folder / "events.jsonl").unlink()
    (folder / "events.jsonl").mkdir()
    for run_id, text in [("not-json", "{not json"), ("a-list", "[1, 2]"), ("no-method", '{"method": 5, "status": "finished"}')]:
        (runs_root / run_id).mkdir()
        (runs_root / run_id / "run.json").write_text(text)

    runs = {r["id"]: r for r in (await get_json(jp_fetch, "runs"))["runs"]}
    assert set(runs) == {
        "good",
        "bad-events",
        "yesterday",
        "huge-pid",
        "float-pid",
        "events-folder",
        "not-json",
        "a-list",
        "no-method",
    }
    assert runs["good"]["status"] == "running" and runs["good"]["events"] == 1 and runs["good"]["skipped"] == 0
    bad = runs["bad-events"]
    # kept: LINE, the "abc" step (step dropped), 1e999 (value None), the 1e999 step (step, epoch dropped, value None), 7, 8
    assert bad["events"] == 6 and bad["step"] == 8 and bad["metrics"] == {"train/loss": 0.5}
    assert bad["skipped"] == 1 + 1 + 3 + 1 + 1 + 1  # step "abc"; name list; step, epoch, value "high"; kind 7; a list; "[[[..."
    assert runs["yesterday"]["status"] == "finished" and runs["yesterday"]["started"] is None
    assert runs["yesterday"]["family"] == "kd" and runs["yesterday"]["skipped"] == 3
    assert runs["huge-pid"]["status"] == runs["float-pid"]["status"] == "running"
    for run_id, reason in [
        ("events-folder", "is a folder"),
        ("not-json", "not valid JSON"),
        ("a-list", "not a JSON object"),
        ("no-method", "'method' and 'status'"),
    ]:
        assert runs[run_id]["status"] == "corrupt" and reason in runs[run_id]["error"], run_id
        info = await get_json(jp_fetch, "runs", run_id)
        assert info["status"] == "corrupt" and reason in info["error"]

    for run_id in ("bad-events", "yesterday", "huge-pid", "float-pid"):
        assert (await get_json(jp_fetch, "runs", run_id))["id"] == run_id
    page = await get_json(jp_fetch, "runs", "bad-events", "events")
    assert [e.get("step") for e in page["events"]] == [1, None, 4, None, 7, 8]
    assert [e.get("value") for e in page["events"]] == [2.0, 1.5, None, None, 0.5, None]
    assert page["events"][-1]["edges"] == [None, 1]  # a 400-digit number is no float: None, as NaN is
    assert page["skipped"] == 8 and page["offset"] == page["size"]
    assert await status_of(jp_fetch, "runs", "events-folder", "events") == 409


# 3. Edge input answers 4xx, never 500.


async def test_edge_input_answers_400_not_500(jp_fetch, http_server_client, jp_base_url, jp_auth_header, make_run, runs_root):
    make_run("edge", lines=[LINE])
    assert await status_of(jp_fetch, "runs", "edge", "events", params={"offset": "4611686018427387904"}) == 400
    assert await status_of(jp_fetch, "runs", "edge", "events", params={"offset": str(len(LINE) + 2)}) == 400
    for path in ("runs/edge/media/a%00.png", "runs/edge/media/" + "a" * 5000 + ".png", "runs/%00/events"):
        assert (await raw(http_server_client, jp_base_url, jp_auth_header, path)).code == 400, path[:40]
    for body in ("[]", '"x"', "5", "{", "null"):
        assert await status_of(jp_fetch, "runs", "edge", "stop", method="POST", body=body) == 400, body
        assert await status_of(jp_fetch, "tutorials", "00_tour", "copy", method="POST", body=body) == 400, body
    big = json.dumps({"dir": "x" * 100_000})
    assert await status_of(jp_fetch, "runs", "edge", "stop", method="POST", body=big) == 413
    assert await status_of(jp_fetch, "tutorials", "00_tour", "copy", method="POST", body=big) == 413
    assert not (runs_root / "edge" / "stop-request").exists()
    (runs_root / "edge" / "run.json").write_text("{corrupt")
    assert await status_of(jp_fetch, "runs", "edge", "stop", method="POST", body="") == 409
    assert not (runs_root / "edge" / "stop-request").exists()


# 4. Tutorial copy: JSON booleans only; hidden folders refused, nothing written.


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "00_tour.ipynb").write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    monkeypatch.setattr(tutorials, "tutorials_dir", lambda: folder)
    return folder


@pytest.mark.parametrize("overwrite", ["false", "true", 0, 1, None, []])
async def test_copy_overwrite_must_be_a_json_boolean(jp_fetch, jp_root_dir, shipped, overwrite):
    mine = jp_root_dir / "00_tour.ipynb"
    mine.write_text(json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"mine": True}}))
    body = json.dumps({"overwrite": overwrite})
    assert await status_of(jp_fetch, "tutorials", "00_tour", "copy", method="POST", body=body) == 400
    assert json.loads(mine.read_text())["metadata"] == {"mine": True}


@pytest.mark.parametrize("directory", [".hid", "work/.sub", ".hid/"])
async def test_copy_refuses_hidden_folders(jp_fetch, jp_root_dir, shipped, directory):
    (jp_root_dir / ".hid").mkdir()
    (jp_root_dir / "work" / ".sub").mkdir(parents=True)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*API, "tutorials", "00_tour", "copy", method="POST", body=json.dumps({"dir": directory}))
    assert info.value.code == 400
    assert b"hidden" in info.value.response.body
    assert not list(jp_root_dir.rglob("00_tour.ipynb"))


# 5. No link inside a run folder is followed.


async def test_links_inside_a_run_folder_are_not_followed(jp_fetch, make_run, tmp_path):
    outside = tmp_path / "outside"
    (outside / "media").mkdir(parents=True)
    (outside / "run.json").write_text(json.dumps({"method": "kd.s3cret", "status": "running", "secret": "s3cret"}))
    (outside / "events.jsonl").write_text('{"step": 0, "kind": "scalar", "name": "s3cret", "value": 1}\n')
    (outside / "media" / "leak.png").write_bytes(b"\x89PNG s3cret")

    linked_info = make_run("linked-info", lines=[LINE])
    (linked_info / "run.json").unlink()
    (linked_info / "run.json").symlink_to(outside / "run.json")
    linked_events = make_run("linked-events")
    (linked_events / "events.jsonl").unlink()
    (linked_events / "events.jsonl").symlink_to(outside / "events.jsonl")
    linked_media = make_run("linked-media", lines=[LINE])
    (linked_media / "media").symlink_to(outside / "media", target_is_directory=True)

    listing = await jp_fetch(*API, "runs")
    assert b"s3cret" not in listing.body
    runs = {r["id"]: r for r in json.loads(listing.body)["runs"]}
    assert runs["linked-info"]["status"] == runs["linked-events"]["status"] == "corrupt"
    assert "symbolic link" in runs["linked-info"]["error"] and "symbolic link" in runs["linked-events"]["error"]
    assert runs["linked-media"]["status"] == "running"
    for parts in (("runs", "linked-info"), ("runs", "linked-events")):
        try:
            body = (await jp_fetch(*API, *parts)).body
        except HTTPClientError as exc:
            body = exc.response.body if exc.response else b""
        assert b"s3cret" not in body
    assert await status_of(jp_fetch, "runs", "linked-events", "events") == 403
    assert await status_of(jp_fetch, "runs", "linked-media", "media", "leak.png") == 403
    assert await status_of(jp_fetch, "runs", "linked-info", "plot.png") == 403
    assert await status_of(jp_fetch, "runs", "linked-info", "stop", method="POST", body="") == 409


# 6. Big runs: an unterminated last line is not re-read on every poll; the plot is drawn from a thinned log.


def _bytes_read():
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="counts the bytes read through /proc/self/io")
def test_an_unterminated_last_line_is_read_once_until_it_grows(make_run):
    folder = make_run("long-line", lines=[LINE])
    events = folder / "events.jsonl"
    with open(events, "a") as f:
        f.write('{"step": 2, "kind": "table", "name": "t", "columns": ["a"], "rows": [["' + "x" * (4 << 20))
    index = RunIndex(folder.parent)
    assert index.summaries()[0]["events"] == 1
    before = _bytes_read()
    for _ in range(3):
        assert index.summaries()[0]["events"] == 1
    assert _bytes_read() - before < 256 << 10  # not the 4 MB line again, three times
    with open(events, "a") as f:
        f.write("x" * 1000)
    before = _bytes_read()
    assert index.summaries()[0]["events"] == 1
    assert _bytes_read() - before < 256 << 10  # only the new bytes looked at
    with open(events, "a") as f:
        f.write('"]]}\n' + LINE.replace('"step": 1', '"step": 3') + "\n")
    run = index.summaries()[0]
    assert run["events"] == 3 and run["step"] == 3 and run["skipped"] == 0


def test_the_thinned_log_keeps_every_kth_event_per_name_and_the_last(tmp_path):
    path = tmp_path / "events.jsonl"
    with open(path, "w") as f:
        for step in range(10_000):
            f.write(json.dumps({"step": step, "kind": "scalar", "name": "train/loss", "value": 1.0 / (step + 1)}) + "\n")
            if step % 1000 == 999:
                f.write(json.dumps({"step": step, "kind": "scalar", "name": "val/acc", "value": step / 1e4}) + "\n")
    log = server_plot.thinned_log(path, cap=100)
    steps, values = log.scalars("train/loss")
    assert 100 <= len(steps) <= 201 and steps[0] == 0 and steps[-1] == 9999
    stride = steps[1] - steps[0]
    assert all(b - a == stride for a, b in zip(steps[:-2], steps[1:-1]))  # evenly spread
    assert log.scalars("val/acc")[0] == list(range(999, 10_000, 1000))  # a short series is kept whole
    assert [e["name"] for e in log.events[-2:]] == ["train/loss", "val/acc"]  # file order


async def test_the_plot_of_a_long_run_is_drawn_from_a_thinned_log(jp_fetch, make_run, monkeypatch):
    lines = [
        json.dumps({"step": s, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": 1.0 / (s + 1)})
        for s in range(20_000)
    ]
    make_run("long", status="finished", lines=lines)
    from nbdistill.widgets import views

    drawn = {}
    real = views.draw_run

    def spy(log, *args, **kwargs):
        drawn["n"] = len(log.of("train/loss"))
        drawn["last"] = log.last_value("train/loss")
        return real(log, *args, **kwargs)

    monkeypatch.setattr(views, "draw_run", spy)
    response = await jp_fetch(*API, "runs", "long", "plot.png")
    assert response.body.startswith(b"\x89PNG")
    assert drawn["n"] <= 2 * server_plot.EVENTS_PER_NAME + 1 < 20_000
    assert drawn["last"] == pytest.approx(1.0 / 20_000)


def test_a_big_backlog_is_read_in_the_background_and_the_summary_says_partial(make_run, runs_root, monkeypatch):
    from nbdistill.server import runindex

    make_run("backlog", lines=[LINE.replace('"step": 1', f'"step": {s}') for s in range(2000)])
    monkeypatch.setattr(runindex, "SYNC_BYTES", 10_000)
    index = RunIndex(runs_root)
    first = index.summaries()[0]
    assert first["partial"] is True and 0 < first["events"] < 2000
    index._catchup.submit(lambda: None).result()  # one background thread: the catch-up has finished
    done = index.summaries()[0]
    assert done["partial"] is False and done["events"] == 2000 and done["step"] == 1999


async def test_a_running_run_whose_writer_is_gone_is_listed_as_lost(jp_fetch, make_run):
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    make_run("crashed", pid=gone.pid, host=os.uname().nodename, lines=[LINE])
    run = (await get_json(jp_fetch, "runs"))["runs"][0]
    assert run["status"] == "lost" and run["alive"] is False
    assert (await get_json(jp_fetch, "runs", "crashed"))["status"] == "lost"
    assert await status_of(jp_fetch, "runs", "crashed", "stop", method="POST", body="") == 409
