import json

import pytest

import nbdistill as nd
from nbdistill.core.logger import RunLogger
from nbdistill.core.runfolder import read_events
from nbdistill.widgets.views import draw_run


def _write_run(root):
    logger = RunLogger(root=root, run_id="r1", method="kd.hinton", flush_every=0.0)
    w = logger.experiment
    logger.log_hyperparams({"temperature": 4.0, "alpha": 0.1})
    for step in range(5):
        logger.log_metrics({"train/loss": 1.0 / (step + 1), "epoch": 0}, step=step)
    w.histogram("h", counts=[1, 2, 3], edges=[0, 1, 2, 3])
    w.points("val/per_class_gap", [0, 1], [0.1, -0.1])
    w.table("t", ["a", "b"], [[1, 2]])
    w.image("img", b"\x89PNG fake")
    w.set_status("finished")
    w.close()
    return root / "r1"


def test_logger_writes_the_run_folder_contract(tmp_path):
    folder = _write_run(tmp_path)
    info = json.loads((folder / "run.json").read_text())
    assert info["method"] == "kd.hinton" and info["family"] == "kd" and info["status"] == "finished"
    assert info["hparams"] == {"temperature": 4.0, "alpha": 0.1} and info["ended"] >= info["started"]
    assert (folder / "checkpoints").is_dir()
    lines = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    assert all({"step", "epoch", "time", "kind", "name"} <= set(e) for e in lines)
    assert [e["kind"] for e in lines] == ["scalar"] * 5 + ["histogram", "points", "table", "image"]
    assert (folder / lines[-1]["path"]).read_bytes() == b"\x89PNG fake"
    run = nd.runs.open(folder)
    assert run.scalars("train/loss") == ([0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.2])
    assert [r.id for r in nd.runs.list(tmp_path)] == ["r1"]


def test_observers_see_every_event_before_disk(tmp_path):
    seen = []
    logger = RunLogger(root=tmp_path, run_id="r2", method="kd.hinton", observers=[seen.append], flush_every=60)
    logger.log_metrics({"a": 1.0}, step=3)
    assert seen and seen[0]["name"] == "a" and seen[0]["step"] == 3
    assert (tmp_path / "r2" / "events.jsonl").read_text() == ""  # buffered: flushed in batches
    logger.finalize("success")
    assert '"a"' in (tmp_path / "r2" / "events.jsonl").read_text()


def test_half_written_last_line_is_left_for_the_next_read(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"step":0,"epoch":0,"time":0,"kind":"scalar","name":"x","value":1}\n{"step":1,"ep')
    events, offset = read_events(path)
    assert len(events) == 1 and offset == path.read_text().index('{"step":1')
    with open(path, "a") as f:
        f.write('och":0,"time":0,"kind":"scalar","name":"x","value":2}\n')
    more, offset2 = read_events(path, offset)
    assert [e["value"] for e in more] == [2] and offset2 == path.stat().st_size


def test_garbage_lines_are_skipped_with_a_warning_and_views_still_draw(tmp_path):
    folder = _write_run(tmp_path)
    with open(folder / "events.jsonl", "a") as f:
        f.write('not json at all\n{"no_kind": 1}\n\x00\x01\n')
        f.write('{"step":9,"epoch":0,"time":0,"kind":"scalar","name":"train/loss","value":0.1}\n{"trunc')
    run = nd.runs.open(folder)
    with pytest.warns(RuntimeWarning, match="skipping unreadable event line"):
        run.refresh()
    assert run.scalars("train/loss")[0][-1] == 9
    fig = draw_run(run.log, run.method)
    assert len(fig.axes) >= 3
    run.plot(tmp_path / "out.png")
    assert (tmp_path / "out.png").stat().st_size > 1000


@pytest.mark.parametrize("content, message", [(None, "has no run.json"), ("{broken", "is corrupt"), ("[]", "is corrupt")])
def test_corrupt_run_folders_raise_a_clear_error(tmp_path, content, message):
    folder = tmp_path / "bad"
    folder.mkdir()
    if content is not None:
        (folder / "run.json").write_text(content)
    with pytest.raises(nd.RunFolderError, match=message):
        nd.runs.open(folder)
    assert nd.runs.list(tmp_path) == []  # a listing skips what it cannot read
    with pytest.raises(nd.RunFolderError, match="no run folder"):
        nd.runs.open(tmp_path / "missing")


def test_run_json_records_what_was_trained():
    import nbdistill as nd

    student = nd.models.MLP(64, [8], 10)
    run = nd.fit(
        "kd.hinton",
        student=student,
        teacher=nd.zoo.teacher("digits-mlp"),
        data=nd.data.Digits(n_train=100, batch_size=32),
        max_epochs=1,
    )
    setting = json.loads((run.path / "run.json").read_text())["setting"]
    assert run.setting == setting
    assert setting["student"]["class"] == "MLP" and setting["student"]["params"] == 64 * 8 + 8 + 8 * 10 + 10
    assert setting["teachers"][0]["params"] == sum(p.numel() for p in nd.zoo.teacher("digits-mlp").parameters())
    data = setting["data"]
    assert data["class"] == "Digits" and data["n_train"] == 100 and data["batch_size"] == 32
    assert data["sizes"]["train"] == 100 and data["sizes"]["val"] > 300
