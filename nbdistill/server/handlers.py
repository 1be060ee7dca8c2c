"""REST handlers over the runs root, all under ``/nbdistill/api`` and all authenticated.

========================================  ===============================================================
``GET  runs``                             every run, newest first: id, family, method, status, times,
                                          last metrics, a sparkline of the main loss
``GET  runs/<id>``                        one run: its ``run.json`` (hyper-parameters, error, versions)
                                          and the same summary
``GET  runs/<id>/events?offset=N``        events from byte ``N`` of ``events.jsonl``; answers
                                          ``{"events", "offset", "size"}`` (ask again from ``offset``)
``POST runs/<id>/stop``                   writes the run's ``stop-request`` (409 if it is not running)
``GET  runs/<id>/plot.png``               the run's static plot (``Run.plot()``)
``GET  runs/<id>/media/<path>``           an image an ``image`` event refers to
``GET  tutorials``                        the tutorial notebooks the package ships
``POST tutorials/<name>/copy``            copies a tutorial into ``{"dir"}`` of the server's root
                                          (kept if already there unless ``{"overwrite": true}``)
========================================  ===============================================================

Run ids are checked (:func:`~.runindex.resolve_run`): nothing outside the runs root is ever read.
Polling handlers do not count as user activity, so an idle server with an open sidebar can still be
culled.
"""
from __future__ import annotations

import asyncio
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..core.errors import RunFolderError
from ..core.runfolder import EVENTS, RUN_JSON, STOP_REQUEST, read_run_json
from .runindex import (
    MAX_PAGE_BYTES,
    MEDIA_TYPES,
    InvalidRunId,
    OutsideRoot,
    RunIndex,
    RunNotFound,
    finite,
    read_events_page,
    resolve_media,
    resolve_run,
)
from .tutorials import list_tutorials, tutorial_path

API = "nbdistill/api"
RUN_ID = r"(?P<run_id>[^/]+)"

#: One thread draws static plots, so matplotlib never draws two figures at once.
_plotter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbdistill-plot")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False)


class _RunsHandler(APIHandler):
    @property
    def index(self) -> RunIndex:
        return self.settings["nbdistill_index"]

    def run_folder(self, run_id: str) -> Path:
        try:
            return resolve_run(self.index.root, run_id)
        except InvalidRunId as exc:
            raise web.HTTPError(400, str(exc)) from None
        except OutsideRoot as exc:
            raise web.HTTPError(403, str(exc)) from None
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None

    def summary(self, folder: Path) -> dict[str, Any]:
        try:
            return self.index.summary(folder)
        except RunFolderError as exc:
            raise web.HTTPError(409, str(exc)) from None


class RunsHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        runs = await asyncio.to_thread(self.index.summaries)
        self.finish(_dumps({"root": str(self.index.root), "time": time.time(), "runs": runs}))


class RunHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    def get(self, run_id: str) -> None:
        folder = self.run_folder(run_id)
        summary = self.summary(folder)
        info = finite(read_run_json(folder))
        self.finish(_dumps({**info, **summary, "time": time.time()}))


class EventsHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    async def get(self, run_id: str) -> None:
        folder = self.run_folder(run_id)
        try:
            offset = int(self.get_query_argument("offset", "0"))
            max_bytes = int(self.get_query_argument("max_bytes", str(MAX_PAGE_BYTES)))
        except ValueError:
            raise web.HTTPError(400, "offset and max_bytes must be integers") from None
        if offset < 0 or max_bytes <= 0:
            raise web.HTTPError(400, "offset must be >= 0 and max_bytes > 0")
        max_bytes = min(max_bytes, MAX_PAGE_BYTES)
        events, next_offset, size = await asyncio.to_thread(read_events_page, folder / EVENTS, offset, max_bytes)
        self.finish(_dumps({"events": events, "offset": next_offset, "size": size}))


class StopHandler(_RunsHandler):
    @web.authenticated
    def post(self, run_id: str) -> None:
        folder = self.run_folder(run_id)
        info = read_run_json(folder)
        if info.get("status") != "running":
            raise web.HTTPError(409, f"run {run_id} is {info.get('status')}; only a running run can be stopped")
        (folder / STOP_REQUEST).touch()
        self.log.info("nbdistill: stop requested for run %s", run_id)
        self.finish(_dumps(self.summary(folder)))


def _render_plot(folder: Path) -> bytes:
    from ..core.run import Run

    buf = io.BytesIO()
    Run(folder).plot().savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


class PlotHandler(_RunsHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        folder = self.run_folder(run_id)
        key = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (folder / RUN_JSON, folder / EVENTS))
        cache: dict[Path, tuple[tuple, bytes]] = self.settings["nbdistill_plots"]
        hit = cache.get(folder)
        if hit is None or hit[0] != key:
            try:
                png = await asyncio.get_running_loop().run_in_executor(_plotter, _render_plot, folder)
            except Exception as exc:  # a view that cannot draw these events must not break the server
                self.log.warning("nbdistill: cannot plot run %s: %s", run_id, exc)
                raise web.HTTPError(500, f"cannot plot run {run_id}: {type(exc).__name__}: {exc}") from None
            cache[folder] = hit = (key, png)
        self.set_header("Cache-Control", "no-store")
        self.finish(hit[1], set_content_type="image/png")


class MediaHandler(_RunsHandler):
    @web.authenticated
    def get(self, run_id: str, relpath: str) -> None:
        folder = self.run_folder(run_id)
        try:
            path = resolve_media(folder, relpath)
        except OutsideRoot as exc:
            raise web.HTTPError(403, str(exc)) from None
        except InvalidRunId as exc:
            raise web.HTTPError(400, str(exc)) from None
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(path.read_bytes(), set_content_type=MEDIA_TYPES[path.suffix.lower()])


class TutorialsHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        self.finish(_dumps({"tutorials": list_tutorials()}))


class TutorialCopyHandler(APIHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        source = tutorial_path(name)
        if source is None:
            raise web.HTTPError(404, f"no tutorial named {name!r}")
        body = self.get_json_body() or {}
        directory = str(body.get("dir") or "").strip("/")
        cm = self.contents_manager
        if directory and not await ensure_async(cm.dir_exists(directory)):
            raise web.HTTPError(404, f"no directory {directory!r}")
        path = f"{directory}/{source.name}" if directory else source.name
        created = bool(body.get("overwrite")) or not await ensure_async(cm.file_exists(path))
        if created:
            content = json.loads(source.read_text(encoding="utf-8"))
            await ensure_async(cm.save({"type": "notebook", "format": "json", "content": content}, path))
        self.finish(_dumps({"path": path, "created": created}))


def setup_handlers(web_app: web.Application, runs_root: Path) -> None:
    """Register the handlers on ``web_app``, serving the runs under ``runs_root``."""
    web_app.settings["nbdistill_index"] = RunIndex(runs_root)
    web_app.settings["nbdistill_plots"] = {}
    base = url_path_join(web_app.settings["base_url"], API)
    routes = [
        ("runs", RunsHandler),
        (f"runs/{RUN_ID}", RunHandler),
        (f"runs/{RUN_ID}/events", EventsHandler),
        (f"runs/{RUN_ID}/stop", StopHandler),
        (f"runs/{RUN_ID}/plot.png", PlotHandler),
        (f"runs/{RUN_ID}/media/(?P<relpath>.+)", MediaHandler),
        ("tutorials", TutorialsHandler),
        ("tutorials/(?P<name>[^/]+)/copy", TutorialCopyHandler),
    ]
    web_app.add_handlers(".*$", [(url_path_join(base, path), handler) for path, handler in routes])
