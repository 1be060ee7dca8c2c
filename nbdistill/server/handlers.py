"""REST handlers over the runs root, all under ``/nbdistill/api`` and all authenticated.

========================================  ===============================================================
``GET  runs``                             every run, newest first: id, family, method, status, times,
                                          last metrics, a sparkline of the main loss, ``skipped`` (bad
                                          lines and fields left out); a run that cannot be read is
                                          ``corrupt`` with the reason in ``error``
``GET  runs/<id>``                        one run: its ``run.json`` (hyper-parameters, error, versions)
                                          and the same summary
``GET  runs/<id>/events?offset=N``        events from byte ``N`` of ``events.jsonl``; answers
                                          ``{"events", "offset", "size", "skipped"}`` (ask again from
                                          ``offset``)
``POST runs/<id>/stop``                   writes the run's stop request (409 if it is not running)
``GET  runs/<id>/plot.png``               the run's static plot (its method's views, from a thinned log)
``GET  runs/<id>/media/<path>``           an image an ``image`` event refers to
``GET  tutorials``                        the tutorial notebooks the package ships
``POST tutorials/<name>/copy``            copies a tutorial into ``{"dir"}`` of the server's root
                                          (kept if already there unless ``{"overwrite": true}``)
========================================  ===============================================================

Run ids are checked (:func:`~.runindex.resolve_run`) and no link inside a run folder is followed
(:mod:`.readers`): nothing outside the runs root is ever read. No handler touches a file on the
event loop: reads run in worker threads, listings in their own pool so that they never hold up a
run's info, and no request waits for another's read (see :mod:`.runindex`). A status is the one
liveness rule's (:func:`nbdistill.core.liveness.effective_status`): ``lost`` for a running run
whose writer is gone. Polling handlers do not count as user activity, so an idle server with an
open sidebar can still be culled.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..core.liveness import effective_status
from ..core.runfolder import RUN_JSON, RunFolder
from .plot import render_plot
from .readers import (
    MAX_PAGE_BYTES,
    BadOffset,
    InvalidRunId,
    OutsideRoot,
    RunNotFound,
    Unreadable,
    finite,
    read_events_page,
    read_info,
    read_media,
)
from .runindex import RunIndex, resolve_run
from .tutorials import list_tutorials, read_tutorial, tutorial_path

API = "nbdistill/api"
RUN_ID = r"(?P<run_id>[^/]+)"
#: Largest request body (a tutorial copy's or a stop's JSON) the handlers accept; larger ones get 413.
MAX_BODY_BYTES = 64 * 1024

#: One thread draws static plots, so matplotlib never draws two figures at once.
_plotter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbdistill-plot")
#: Listings (which may re-read a big file) run here, apart from the per-run reads below.
_listings = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nbdistill-list")
#: One run's info, events, media, stop: small reads.
_reads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nbdistill-read")

T = TypeVar("T")


async def off_loop(executor: Executor, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in ``executor``'s threads, awaited without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False)


def json_object_body(handler: APIHandler) -> dict[str, Any]:
    """The request's JSON object body (``{}`` if empty); 413 if over :data:`MAX_BODY_BYTES`, 400 if not an object."""
    body = handler.request.body or b""
    if len(body) > MAX_BODY_BYTES:
        raise web.HTTPError(413, f"the request body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise web.HTTPError(400, "the request body is not JSON; send a JSON object such as {}") from None
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        raise web.HTTPError(400, f"the request body must be a JSON object such as {{}}, not {kind}")
    return value


class _RunsHandler(APIHandler):
    @property
    def index(self) -> RunIndex:
        return self.settings["nbdistill_index"]

    async def run_folder(self, run_id: str) -> Path:
        try:
            return await off_loop(_reads, resolve_run, self.index.root, run_id)
        except InvalidRunId as exc:
            raise web.HTTPError(400, str(exc)) from None
        except OutsideRoot as exc:
            raise web.HTTPError(403, str(exc)) from None
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None


class RunsHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    async def get(self) -> None:
        runs = await off_loop(_listings, self.index.summaries)
        self.finish(_dumps({"root": str(self.index.root), "time": time.time(), "runs": runs}))


class RunHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    async def get(self, run_id: str) -> None:
        folder = await self.run_folder(run_id)
        try:
            info, summary = await off_loop(_reads, self.index.run_info, folder)
        except FileNotFoundError:
            raise web.HTTPError(404, f"no run {run_id!r} under {self.index.root}") from None
        self.finish(_dumps({**finite(info), **summary, "time": time.time()}))


class EventsHandler(_RunsHandler):
    _track_activity = False

    @web.authenticated
    async def get(self, run_id: str) -> None:
        folder = await self.run_folder(run_id)
        try:
            offset = int(self.get_query_argument("offset", "0"))
            max_bytes = int(self.get_query_argument("max_bytes", str(MAX_PAGE_BYTES)))
        except ValueError:
            raise web.HTTPError(400, "offset and max_bytes must be integers") from None
        if offset < 0 or max_bytes <= 0:
            raise web.HTTPError(400, "offset must be >= 0 and max_bytes > 0")
        max_bytes = min(max_bytes, MAX_PAGE_BYTES)
        try:
            events, next_offset, size, skipped = await off_loop(
                _reads, read_events_page, RunFolder(folder).events, offset, max_bytes
            )
        except BadOffset as exc:
            raise web.HTTPError(400, str(exc)) from None
        except OutsideRoot as exc:
            raise web.HTTPError(403, str(exc)) from None
        except (Unreadable, OSError) as exc:
            raise web.HTTPError(409, f"cannot read the events of run {run_id}: {exc}") from None
        self.finish(_dumps({"events": events, "offset": next_offset, "size": size, "skipped": skipped}))


def _request_stop(index: RunIndex, folder: Path) -> dict[str, Any]:
    try:
        info, _ = read_info(folder)
    except (Unreadable, OutsideRoot, OSError) as exc:
        raise web.HTTPError(409, f"run {folder.name} cannot be stopped: its {RUN_JSON} cannot be read ({exc})") from None
    status = effective_status(folder, info)
    if status != "running":
        raise web.HTTPError(409, f"run {folder.name} is {status}; only a running run can be stopped")
    RunFolder(folder).request_stop()  # never through a link (O_NOFOLLOW)
    return index.summary(folder)


class StopHandler(_RunsHandler):
    @web.authenticated
    async def post(self, run_id: str) -> None:
        json_object_body(self)
        folder = await self.run_folder(run_id)
        try:
            summary = await off_loop(_reads, _request_stop, self.index, folder)
        except OSError as exc:
            raise web.HTTPError(409, f"cannot write the stop request of run {run_id}: {exc.strerror or exc}") from None
        self.log.info("nbdistill: stop requested for run %s", run_id)
        self.finish(_dumps(summary))


def _plot_key(folder: Path) -> tuple[int, ...]:
    key = []
    for path in (RunFolder(folder).run_json, RunFolder(folder).events):
        try:
            st = os.lstat(path)
            key += [st.st_ino, st.st_mtime_ns, st.st_size]
        except OSError:
            key += [0, 0, 0]
    return tuple(key)


class PlotHandler(_RunsHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        folder = await self.run_folder(run_id)
        key = await off_loop(_reads, _plot_key, folder)
        cache: dict[Path, tuple[tuple, bytes]] = self.settings["nbdistill_plots"]
        hit = cache.get(folder)
        if hit is None or hit[0] != key:
            try:
                png = await off_loop(_plotter, render_plot, folder)
            except OutsideRoot as exc:
                raise web.HTTPError(403, str(exc)) from None
            except (Unreadable, OSError) as exc:
                raise web.HTTPError(409, f"cannot plot run {run_id}: {exc}") from None
            except Exception as exc:  # a view that cannot draw these events must not break the server
                self.log.warning("nbdistill: cannot plot run %s: %s", run_id, exc)
                raise web.HTTPError(500, f"cannot plot run {run_id}: {type(exc).__name__}: {exc}") from None
            cache[folder] = hit = (key, png)
        self.set_header("Cache-Control", "no-store")
        self.finish(hit[1], set_content_type="image/png")


class MediaHandler(_RunsHandler):
    @web.authenticated
    async def get(self, run_id: str, relpath: str) -> None:
        folder = await self.run_folder(run_id)
        try:
            data, content_type = await off_loop(_reads, read_media, folder, relpath)
        except OutsideRoot as exc:
            raise web.HTTPError(403, str(exc)) from None
        except InvalidRunId as exc:
            raise web.HTTPError(400, str(exc)) from None
        except RunNotFound as exc:
            raise web.HTTPError(404, str(exc)) from None
        except (Unreadable, OSError) as exc:
            raise web.HTTPError(409, f"cannot read media {relpath[:80]!r} of run {run_id}: {exc}") from None
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(data, set_content_type=content_type)


class TutorialsHandler(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        tutorials = await off_loop(_reads, list_tutorials)
        self.finish(_dumps({"tutorials": tutorials}))


def _hidden_component(path: str) -> str | None:
    """The first component of ``path`` that Jupyter counts as hidden (``.name``; ``..`` is the contents manager's to refuse)."""
    return next((part for part in path.split("/") if part.startswith(".") and part not in (".", "..")), None)


class TutorialCopyHandler(APIHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        body = json_object_body(self)
        directory, overwrite = body.get("dir", ""), body.get("overwrite", False)
        if not isinstance(directory, str) or "\x00" in directory:
            raise web.HTTPError(400, f"'dir' must be a folder path (a JSON string), not {directory!r}")
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, f"'overwrite' must be true or false (a JSON boolean), not {overwrite!r}")
        source = await off_loop(_reads, tutorial_path, name)
        if source is None:
            raise web.HTTPError(404, f"no tutorial named {name!r}")
        directory = directory.strip("/")
        path = f"{directory}/{source.name}" if directory else source.name
        cm = self.contents_manager
        if not cm.allow_hidden and (_hidden_component(directory) or await ensure_async(cm.is_hidden(directory or ""))):
            raise web.HTTPError(
                400,
                f"cannot copy a tutorial into the hidden folder {directory!r}: the server does not "
                "write hidden files (ContentsManager.allow_hidden is False)",
            )
        if directory and not await ensure_async(cm.dir_exists(directory)):
            raise web.HTTPError(404, f"no directory {directory!r}")
        created = overwrite or not await ensure_async(cm.file_exists(path))
        if created:
            content = await off_loop(_reads, read_tutorial, source)
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
