"""``Run``: read a run folder (live or finished) — its info, events, scalars, static plot, and what
it produced (:meth:`Run.student`, :meth:`Run.distilled`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import RunFolderError
from .liveness import effective_status
from .runfolder import RunFolder, runs_root


class EventLog:
    """Events in memory, indexed by name; what every view draws from.

    Fed either from a run folder (:class:`Run`) or live from a logger observer (the panel).
    """

    def __init__(self, events: Iterable[dict] = ()):
        self.events: list[dict] = []
        self._by_name: dict[str, list[dict]] = {}
        self.extend(events)

    def append(self, event: dict) -> None:
        self.events.append(event)
        self._by_name.setdefault(event["name"], []).append(event)

    def extend(self, events: Iterable[dict]) -> None:
        for e in events:
            self.append(e)

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, evs in self._by_name.items() if kind is None or evs[0]["kind"] == kind]

    def of(self, name: str) -> list[dict]:
        return self._by_name.get(name, [])

    def scalars(self, name: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of scalar ``name`` in the order written (an event whose step was a bad
        field, dropped by the reader, is left out)."""
        evs = [e for e in self.of(name) if e["kind"] == "scalar" and "step" in e]
        return [e["step"] for e in evs], [e["value"] for e in evs]

    def last(self, name: str) -> dict | None:
        evs = self.of(name)
        return evs[-1] if evs else None

    def last_value(self, name: str, default: float | None = None) -> float | None:
        e = self.last(name)
        return e["value"] if e is not None and e["kind"] == "scalar" else default

    def __len__(self) -> int:
        return len(self.events)


class Run:
    """A run folder. ``Run(path)`` raises :class:`RunFolderError` if it is not a readable run.

    ``run_folder`` is its :class:`~.runfolder.RunFolder`; ``skipped`` counts the bad lines and fields of
    ``events.jsonl`` left out so far (see :mod:`.eventfile`: never fatal, a warning says how many)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.run_folder = RunFolder(self.path)
        self.info: dict[str, Any] = self.run_folder.read_info()
        self._log = EventLog()
        self._offset = 0
        self.skipped = 0

    def __repr__(self) -> str:
        return f"Run({self.id!r}, method={self.method!r}, status={self.status!r})"

    def refresh(self) -> Run:
        """Re-read ``run.json`` and any new complete lines of ``events.jsonl``."""
        self.info = self.run_folder.read_info()
        page = self.run_folder.read_events(self._offset)
        self._offset = page.offset
        if page.skipped:
            self.skipped += page.skipped
            warnings.warn(
                f"{self.run_folder.events}: skipped {page.skipped} unreadable event lines or fields", RuntimeWarning, stacklevel=2
            )
        self._log.extend(page.events)
        return self

    @property
    def id(self) -> str:
        return self.info.get("id") or self.path.name

    @property
    def method(self) -> str:
        return self.info["method"]

    @property
    def family(self) -> str:
        return self.info.get("family") or self.method.split(".")[0]

    @property
    def status(self) -> str:
        """``running``, ``finished``, ``stopped``, ``failed``, or ``lost``: ``run.json`` says ``running``
        but its writer is gone (killed; see :mod:`.liveness`). ``info["status"]`` is ``run.json``'s word."""
        return effective_status(self.path, self.info)

    @property
    def error(self) -> str | None:
        return self.info.get("error")

    @property
    def hparams(self) -> dict[str, Any]:
        return self.info.get("hparams") or {}

    @property
    def setting(self) -> dict[str, Any]:
        """What was trained: student, teacher(s) and data (see :mod:`nbdistill.core.setting`)."""
        return self.info.get("setting") or {}

    @property
    def log(self) -> EventLog:
        if self._offset == 0:
            self.refresh()
        return self._log

    @property
    def events(self) -> list[dict]:
        return self.log.events

    def scalars(self, name: str) -> tuple[list[int], list[float]]:
        return self.log.scalars(name)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of every scalar."""
        return {n: self.log.last_value(n) for n in self.log.names("scalar")}

    @property
    def checkpoint(self) -> Path | None:
        return self.run_folder.checkpoint()

    @property
    def max_epochs(self) -> int | None:
        """The run's target (what :func:`nbdistill.resume` continues to by default), if recorded."""
        value = self.info.get("max_epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    def load_checkpoint(self) -> dict[str, Any]:
        """The run's last checkpoint (``checkpoints/last.ckpt``) as the dict Lightning saved, on the CPU."""
        path = self.checkpoint
        if path is None:
            raise RunFolderError(
                f"run {self.id} has no checkpoint ({self.run_folder.last_checkpoint}): it is {self.status} and saved nothing yet"
            )
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception as exc:  # noqa: BLE001 (a truncated or foreign file)
            raise RunFolderError(f"run {self.id}'s checkpoint {path} cannot be read: {type(exc).__name__}: {exc}") from exc

    def epochs_done(self) -> int | None:
        """Epochs completed in the last checkpoint (``None`` without a checkpoint)."""
        if self.checkpoint is None:
            return None
        from .outputs import epochs_done

        return epochs_done(self.load_checkpoint())

    def student(self, module: Any = None):
        """The trained student: its weights loaded into ``module`` (the same architecture it was
        trained with), or, without ``module``, rebuilt from the run's record of its class and constructor
        arguments where the run recorded them all (``setting["student"]["init"]``). Returned in eval mode. For ``graph.mirage`` these are the weights of the
        best validation epoch, the ones its test metrics measure.

        Raises :class:`RunFolderError` when the run has no checkpoint, trains no student (a
        dataset-distillation run: see :meth:`distilled`), ``module`` does not fit the weights, or, without
        ``module``, the recorded class cannot be imported or built (also a :class:`ConfigError`).
        """
        from .outputs import student_from_checkpoint

        return student_from_checkpoint(self, self.load_checkpoint(), module)

    def distilled(self):
        """What a data-distillation run produced, from its last checkpoint.

        - ``dataset.*``: ``(images, labels)``, the synthetic set as the method evaluates it (labels
          are class indices, or probabilities for learned soft labels; FTD/DATM's EMA images);
        - ``graph.mirage``: the distilled graphs, a list of PyG ``Data`` (one per frequent
          computation-tree set: ``x``, ``edge_index``, ``y``, ``root_mask``).

        Raises :class:`RunFolderError` for other methods (they distil a student: see :meth:`student`)
        or without a checkpoint.
        """
        from .outputs import distilled_from_checkpoint

        return distilled_from_checkpoint(self, lambda: self.load_checkpoint())

    def request_stop(self) -> None:
        """Ask a running run (in any process) to stop after its current batch."""
        self.run_folder.request_stop()

    def plot(self, path: str | os.PathLike | None = None, views: Iterable[str] | None = None, drawer=None):
        """Draw this run's views on a static matplotlib Figure; save it as PNG when ``path`` is given.

        ``drawer(log, method, views=, title=)`` lays the views out on a Figure; by default the one
        the view registry gives (:func:`nbdistill.core.views.drawer`: the widgets' ``draw_run``).
        A registered view's name given as ``path`` (``run.plot("score_samples")``) draws that view and
        saves nothing: a path has a suffix (``"run.png"``).
        """
        from .figure import shown
        from .views import VIEWS
        from .views import drawer as registered_drawer

        if isinstance(path, str) and views is None and path in VIEWS:
            path, views = None, [path]

        draw = drawer if drawer is not None else registered_drawer()
        # a Figure that also shows itself in a notebook without `%matplotlib inline`
        fig = shown(draw(self.log, self.method, views=views, title=f"{self.method} — {self.id} ({self.status})"))
        if path is not None:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        return fig

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.plot().savefig(buf, format="png", dpi=90, bbox_inches="tight")
        return buf.getvalue()


def open_run(path_or_id: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Open a run by folder path, or by id under the runs root."""
    path = Path(path_or_id)
    if not path.exists() and not path.is_absolute():
        candidate = runs_root(root) / path
        if candidate.exists():
            path = candidate
    if not path.exists():
        raise RunFolderError(f"no run folder at {path} (runs root: {runs_root(root).resolve()})")
    return Run(path)


def list_runs(root: str | os.PathLike | None = None) -> list[Run]:
    """Every readable run under the runs root, oldest first; unreadable folders are skipped."""
    base = runs_root(root)
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.is_dir():
            try:
                found.append(Run(child))
            except RunFolderError:
                continue
    return sorted(found, key=lambda r: (r.info.get("started") or 0, r.id))
