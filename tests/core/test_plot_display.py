"""``run.plot()`` shows its picture in a notebook without ``%matplotlib inline``."""

from IPython.core.formatters import DisplayFormatter
from matplotlib.figure import Figure

from nbdistill.core.logger import RunLogger
from nbdistill.core.run import Run


def _run(root) -> Run:
    logger = RunLogger(root=root, run_id="r1", method="kd.hinton", flush_every=0.0)
    for step in range(5):
        logger.log_metrics({"train/loss": 1.0 / (step + 1), "val/student_acc": 0.1 * step, "epoch": 0}, step=step)
    logger.experiment.set_status("finished")
    logger.experiment.close()
    return Run(root / "r1")


def test_run_plot_displays_as_png_without_the_inline_backend(tmp_path):
    fig = _run(tmp_path).plot()
    assert isinstance(fig, Figure) and len(fig.axes) >= 1  # still a Figure for existing callers
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # what Jupyter does with a cell's value: a fresh formatter (no `%matplotlib inline`) gives a PNG
    data, _ = DisplayFormatter().format(fig)
    assert "image/png" in data and data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_run_plot_still_saves_a_png_file(tmp_path):
    out = tmp_path / "x.png"
    fig = _run(tmp_path).plot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and isinstance(fig, Figure)


def test_a_view_name_given_as_path_draws_that_view_and_saves_nothing(tmp_path, monkeypatch):
    import nbdistill  # noqa: F401  (registers the views)

    monkeypatch.chdir(tmp_path)
    fig = _run(tmp_path).plot("losses")
    assert len(fig.axes) == 1 and not list(tmp_path.glob("losses*"))
