"""Knowledge distillation: a teacher network's outputs guide a student network.

One file per method, named after it (``kd.hinton`` in :mod:`.hinton`), on the bases of :mod:`.base`;
every loss in :mod:`.losses`; the views in :mod:`.views`.
"""

from . import (  # noqa: F401  (importing them registers the methods and views)
    dkd,
    fitnet,
    hierarchical_self,
    hinton,
    lelp,
    mi_alpha,
    moe_teacher,
    mtard,
    ofa,
    pipelines,
    pld,
    quantized,
    self_gt,
    signal,
    student_only,
    views,
)
