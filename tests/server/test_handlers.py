"""The REST handlers of the server extension, through a real Jupyter server (pytest-jupyter)."""

import json
import threading
import time

import pytest
from server_api import API, get_json, raw, status_of

import nbdistill as nd
from nbdistill.core.runfolder import RunFolder


def read_events(folder):
    """``(events, next offset)`` of a run folder as core's reader (``nd.runs``) reads them."""
    page = RunFolder(folder).read_events()
    return page.events, page.offset


async def test_list_runs_summarises_each_run(jp_fetch, finished_run, make_run):
    make_run(
        "live-one",
        started=time.time() + 60,
        lines=[json.dumps({"step": 1, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": 2.0})],
    )
    reply = await get_json(jp_fetch, "runs")
    runs = {r["id"]: r for r in reply["runs"]}
    assert set(runs) == {"real-hinton", "live-one"}
    assert reply["runs"][0]["id"] == "live-one"  # newest first
    real = runs["real-hinton"]
    assert (real["family"], real["method"], real["status"]) == ("kd", "kd.hinton", "finished")
    assert real["started"] < real["ended"]
    assert real["main"] == "train/loss"
    assert 0 < len(real["spark"]) <= 64
    assert 0 <= real["metrics"]["val/student_acc"] <= 1
    assert real["events"] == len(read_events(finished_run)[0])
    live = runs["live-one"]
    assert live["status"] == "running" and live["metrics"] == {"train/loss": 2.0}
    assert live["alive"] is None  # no pid recorded: unknown, not "dead"


async def test_list_runs_on_a_missing_root_is_empty(jp_fetch):
    assert (await get_json(jp_fetch, "runs"))["runs"] == []


async def test_list_runs_picks_up_appended_events(jp_fetch, make_run):
    folder = make_run("growing")
    line = {"step": 0, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": 3.0}
    for step in range(1, 4):
        with open(folder / "events.jsonl", "a") as f:
            f.write(json.dumps({**line, "step": step, "value": 3.0 / step}) + "\n")
        run = (await get_json(jp_fetch, "runs"))["runs"][0]
        assert run["step"] == step and run["metrics"]["train/loss"] == pytest.approx(3.0 / step)
        assert len(run["spark"]) == step


async def test_run_info_has_hparams_and_summary(jp_fetch, finished_run):
    info = await get_json(jp_fetch, "runs", "real-hinton")
    assert info["hparams"]["temperature"] == 4.0
    assert info["status"] == "finished" and info["main"] == "train/loss"
    assert "versions" in info and "time" in info


async def test_read_events_from_offsets_matches_the_core_reader(jp_fetch, finished_run):
    expected, end = read_events(finished_run)
    page = await get_json(jp_fetch, "runs", "real-hinton", "events")
    assert page["events"] == expected and page["offset"] == end == page["size"]
    again = await get_json(jp_fetch, "runs", "real-hinton", "events", params={"offset": str(end)})
    assert again["events"] == [] and again["offset"] == end


async def test_read_events_in_small_pages(jp_fetch, finished_run):
    expected, end = read_events(finished_run)
    got, offset, pages = [], 0, 0
    while offset < end:
        page = await get_json(jp_fetch, "runs", "real-hinton", "events", params={"offset": str(offset), "max_bytes": "600"})
        got += page["events"]
        offset = page["offset"]
        pages += 1
    assert got == expected and pages > 3


async def test_half_written_last_line_waits_for_its_end(jp_fetch, make_run):
    first = json.dumps({"step": 1, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": 1.5})
    folder = make_run("tail", lines=[first])
    with open(folder / "events.jsonl", "a") as f:
        f.write('{"step": 2, "epoch": 0, "time": 2.0, "kind": "scal')
    page = await get_json(jp_fetch, "runs", "tail", "events")
    assert [e["step"] for e in page["events"]] == [1]
    assert page["offset"] == len(first) + 1 < page["size"]
    run = (await get_json(jp_fetch, "runs"))["runs"][0]
    assert run["events"] == 1
    with open(folder / "events.jsonl", "a") as f:
        f.write('ar", "name": "train/loss", "value": 1.0}\n')
    rest = await get_json(jp_fetch, "runs", "tail", "events", params={"offset": str(page["offset"])})
    assert [(e["step"], e["value"]) for e in rest["events"]] == [(2, 1.0)]
    assert (await get_json(jp_fetch, "runs"))["runs"][0]["metrics"]["train/loss"] == 1.0


async def test_garbage_lines_and_non_finite_values_stay_valid_json(jp_fetch, make_run):
    lines = [
        "not json at all",
        json.dumps({"no": "kind"}),
        '{"step": 3, "epoch": 0, "time": 1.0, "kind": "scalar", "name": "train/loss", "value": NaN}',
        '{"step": 4, "epoch": 0, "time": 1.0, "kind": "histogram", "name": "h", "edges": [0, 1, Infinity], "counts": [1, 2]}',
    ]
    make_run("odd", status="failed", lines=lines, error="NonFiniteLoss: loss became nan")
    response = await jp_fetch(*API, "runs", "odd", "events")
    page = json.loads(response.body, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert [e["step"] for e in page["events"]] == [3, 4]
    assert page["events"][0]["value"] is None and page["events"][1]["edges"] == [0, 1, None]
    run = (await get_json(jp_fetch, "runs"))["runs"][0]
    assert run["metrics"] == {"train/loss": None} and run["error"].startswith("NonFiniteLoss")


async def test_stop_writes_the_stop_request(jp_fetch, make_run):
    folder = make_run("to-stop")
    reply = await get_json(jp_fetch, "runs", "to-stop", "stop", method="POST", body="")
    assert (folder / "stop-request").exists() and reply["stop_requested"] is True


async def test_stop_refuses_runs_that_are_not_running(jp_fetch, finished_run):
    assert await status_of(jp_fetch, "runs", "real-hinton", "stop", method="POST", body="") == 409
    assert not (finished_run / "stop-request").exists()


async def test_stop_ends_a_real_training_run(jp_fetch, runs_root):
    """The stop endpoint + the GracefulStop callback: a live run becomes ``stopped``."""
    result = {}

    def train():
        result["run"] = nd.fit(
            "kd.hinton",
            teacher=nd.zoo.teacher("digits-mlp"),
            student=nd.models.MLP(64, [16], 10),
            data=nd.data.Digits(),
            max_epochs=3000,
            runs_root=runs_root,
            run_id="long",  # stopped long before
        )

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    deadline = time.time() + 60
    run = None
    while time.time() < deadline:
        runs = (await get_json(jp_fetch, "runs"))["runs"]
        run = runs[0] if runs else None
        if run and run["status"] == "running" and run["events"] > 0:
            break
        time.sleep(0.2)
    assert run and run["status"] == "running" and run["alive"] is True
    await get_json(jp_fetch, "runs", "long", "stop", method="POST", body="")
    thread.join(60)
    assert not thread.is_alive()
    info = await get_json(jp_fetch, "runs", "long")
    assert info["status"] == "stopped" and info["epoch"] < 2999
    assert result["run"].status == "stopped"


async def test_requests_without_the_token_get_403(jp_fetch, finished_run):
    for parts, method in [
        (("runs",), "GET"),
        (("runs", "real-hinton", "events"), "GET"),
        (("runs", "real-hinton", "stop"), "POST"),
        (("tutorials",), "GET"),
    ]:
        code = await status_of(
            jp_fetch, *parts, method=method, body="" if method == "POST" else None, headers={"Authorization": ""}
        )
        assert code == 403, parts


@pytest.mark.parametrize(
    "path, expected",
    [
        ("runs/..%2Fx", 400),
        ("runs/..%2F..%2Fetc%2Fpasswd/events", 400),
        ("runs/%2Fetc%2Fpasswd", 400),
        ("runs/%2e%2e/events", 400),
        ("runs/%252e%252e%252fx/events", 400),
        ("runs/.hidden/events", 400),
        ("runs/no-such-run", 404),
        ("runs/real-hinton/media/..%2Frun.json", 403),
        ("runs/real-hinton/media/../run.json", 403),
    ],
)
async def test_paths_leaving_the_root_are_refused(http_server_client, jp_base_url, jp_auth_header, finished_run, path, expected):
    assert (await raw(http_server_client, jp_base_url, jp_auth_header, path)).code == expected


async def test_symlinks_leaving_the_root_are_refused(jp_fetch, finished_run, runs_root, tmp_path, make_run):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.json").write_text(json.dumps({"method": "kd.hinton", "status": "running", "secret": "s3cret"}))
    (outside / "events.jsonl").write_text('{"step": 0, "kind": "scalar", "name": "secret", "value": 1}\n')
    (runs_root / "escape").symlink_to(outside, target_is_directory=True)
    for parts in (("runs", "escape"), ("runs", "escape", "events")):
        assert await status_of(jp_fetch, *parts) == 403
    assert await status_of(jp_fetch, "runs", "escape", "stop", method="POST", body="") == 403
    assert "escape" not in {r["id"] for r in (await get_json(jp_fetch, "runs"))["runs"]}
    assert not (outside / "stop-request").exists()
    media = finished_run / "media"
    media.mkdir()
    (media / "leak.png").symlink_to(outside / "run.json")
    assert await status_of(jp_fetch, "runs", "real-hinton", "media", "leak.png") == 403


async def test_media_serves_images_of_image_events(jp_fetch, make_run):
    folder = make_run("pics")
    (folder / "media").mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    (folder / "media" / "samples-00000004.png").write_bytes(png)
    (folder / "media" / "page.html").write_text("<script>alert(1)</script>")
    response = await jp_fetch(*API, "runs", "pics", "media", "samples-00000004.png")
    assert response.body == png and response.headers["Content-Type"] == "image/png"
    assert await status_of(jp_fetch, "runs", "pics", "media", "page.html") == 400
    assert await status_of(jp_fetch, "runs", "pics", "media", "missing.png") == 404


async def test_plot_is_a_png_of_the_run(jp_fetch, finished_run):
    response = await jp_fetch(*API, "runs", "real-hinton", "plot.png")
    assert response.headers["Content-Type"] == "image/png"
    assert response.body.startswith(b"\x89PNG") and len(response.body) > 10_000


async def test_bad_offsets_are_refused(jp_fetch, finished_run):
    for params in ({"offset": "-1"}, {"offset": "x"}, {"max_bytes": "0"}):
        assert await status_of(jp_fetch, "runs", "real-hinton", "events", params=params) == 400
