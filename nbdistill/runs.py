"""Reading run folders: ``nd.runs.list()``, ``nd.runs.open(path_or_id)``."""

from .core.run import EventLog, Run  # noqa: A001
from .core.run import list_runs as list
from .core.run import open_run as open

__all__ = ["EventLog", "Run", "list", "open"]
