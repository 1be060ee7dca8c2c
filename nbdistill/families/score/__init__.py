"""Score / diffusion distillation: a many-step diffusion teacher into a few-step (or one-step) student.

Conventions shared by every file of the family (``score.md`` §0):

- time ``t`` in ``[0, 1]`` (a float tensor of shape ``[B]`` or a scalar); noising
  ``x_t = alpha(t) x + sigma(t) eps``; a schedule object (:mod:`.schedule`) gives ``alpha``,
  ``sigma``, ``log_snr`` and the sampler's times;
- a *denoiser* is a plain ``nn.Module`` whose ``forward(x_t, t)`` returns the x0-prediction
  ``E[x | x_t]``; the score follows from it (:func:`.schedule.score_from_denoiser`);
- a *density* (the exact mixture, :mod:`.exact`) has ``log_prob(x)`` and ``sample(n, generator)``.

Foundations:

- :mod:`.schedule`: the variance-preserving cosine (default) and linear schedules;
- :mod:`.exact`: Gaussian mixtures with the closed-form noisy score and optimal denoiser, and
  :class:`~.exact.ExactDenoiser`, the exact teacher (its ODE is the true one);
- :mod:`.samplers`: the probability-flow ODE samplers (DDIM, Euler, Heun);
- the 2-D data sets are in :mod:`nbdistill.data.toy2d`.

Methods (registered ``score.*``, one file each, on the base :class:`.base.ScoreModule`; the losses in
:mod:`.losses`): ``progressive``. Planned: ``consistency``, ``tscd``,
``dmd``, ``dmd2``, ``decoupled_dmd``, ``phased_dmd``, ``sid``, ``disback``, ``boot``, ``lora``,
``pso``, the particle methods ``sds``, ``vsd``, ``bsd``, the no-distillation baselines and ``rolling``.
"""

from . import progressive, views  # noqa: F401,E402  (importing them registers the method and the views)
from . import consistency  # noqa: F401,E402
from . import tscd  # noqa: F401,E402
from . import dmd  # noqa: F401,E402
from . import dmd2  # noqa: F401,E402
from . import decoupled_dmd  # noqa: F401,E402
from . import phased_dmd  # noqa: F401,E402
from . import bsd, sds, vsd  # noqa: F401,E402
from . import boot  # noqa: F401,E402
from . import lora  # noqa: F401,E402
from . import tuned_sampler  # noqa: F401,E402
from . import eg4d  # noqa: F401,E402
from . import pso  # noqa: F401,E402
from . import rolling  # noqa: F401,E402
from . import sid  # noqa: F401,E402
