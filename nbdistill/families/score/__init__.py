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

- :mod:`.metrics` and :mod:`.quality`: distances of samples to the data, the quality-vs-steps table;
- :mod:`.evaluation`: the family's evaluation hook (the student's samples measured at every validation).

Methods (registered ``score.*``, one file each, on the base :class:`.base.ScoreModule`; their formulas
in :mod:`.losses`, one file a method):

- fewer steps along the teacher's ODE: ``progressive``, ``consistency``, ``tscd``, ``lora`` (LoRA
  adapters on the teacher), ``boot`` (data-free);
- distribution matching with a fake score: ``dmd``, ``dmd2``, ``decoupled_dmd``, ``phased_dmd``,
  ``sid``, ``disback``; ``pso`` tunes such a generator toward a new target;
- particles moved by the teacher's score: ``sds``, ``vsd``, ``bsd``;
- baselines with no distillation: ``tuned_sampler``, ``eg4d``;
- sequences: ``rolling`` (Rolling Forcing on 1-D frames).
"""

from . import (  # noqa: F401  (importing them registers the methods and the views)
    boot,
    bsd,
    consistency,
    decoupled_dmd,
    disback,
    dmd,
    dmd2,
    eg4d,
    lora,
    phased_dmd,
    progressive,
    pso,
    rolling,
    sds,
    sid,
    tscd,
    tuned_sampler,
    views,
    vsd,
)
