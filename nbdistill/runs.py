"""Reading run folders: ``nd.runs.list()``, ``nd.runs.open(path_or_id)``."""
from .core.run import EventLog, Run, list_runs as list, open_run as open  # noqa: A001

__all__ = ["EventLog", "Run", "list", "open"]
