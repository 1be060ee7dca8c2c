"""Knowledge distillation as a pipeline: methods that choose the student, make the labels, split the
data across clients, or protect what the teacher knows, around a distillation loss.

One file per method, named after it (``kd.diswot`` in :mod:`.diswot`); a method's helpers sit beside
it in files named after it (``knfu_clients.py``). Importing this package registers the methods.
"""

from . import (  # noqa: F401  (importing them registers the methods and their views)
    autodistil,
    autodistiller,
    diswot,
    fair,
    fair_views,
    knfu,
    otd,
    otd_views,
    promptkd,
    simclr_v2,
    swing,
    unfused,
)
