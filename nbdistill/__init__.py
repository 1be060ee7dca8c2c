"""nbdistill: learn and explore distillation in JupyterLab.

    import nbdistill as nd
    nd.methods("kd")                                   # every registered method of a family
    run = nd.fit("kd.hinton", teacher=nd.zoo.teacher("digits-mlp"),
                 student=nd.models.MLP(64, [8], 10), data=nd.data.Digits())
    run.plot()
    nd.panel("kd", teacher=..., student=..., data=...)  # the live panel
"""
__version__ = "0.1.0"

from . import data, models, runs, zoo  # noqa: E402
from .core import ConfigError, HParam, RunFolderError, TrainingFailed, family_names, get_method, methods  # noqa: E402
from .core.fit import build, fit, resume  # noqa: E402


def panel(family: str = "kd", **kwargs):
    """The live training panel of ``family`` (see :class:`nbdistill.widgets.panel.Panel`)."""
    from .widgets.panel import Panel

    return Panel(family, **kwargs)


__all__ = [
    "__version__", "data", "models", "runs", "zoo", "ConfigError", "HParam", "RunFolderError",
    "TrainingFailed", "family_names", "get_method", "methods", "build", "fit", "resume", "panel",
]
