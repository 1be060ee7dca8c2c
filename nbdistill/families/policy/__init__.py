"""Policy and algorithm distillation: an RL or bandit algorithm (or a privileged policy) into a policy.

Foundations:

- :mod:`.envs`: bandits with the Gymnasium API, vectorised in torch (Bernoulli, Gaussian, linear; a
  user's own plain envs through :class:`~.envs.PlainEnvs`); the tasks come from :mod:`nbdistill.data.bandits`;
- :mod:`.algorithms`: the teacher algorithms (UCB, Thompson sampling, LinUCB, greedy, random, oracle,
  DPT's Dirichlet roll-in) and their per-arm statistics (EVOLvE's algorithm-guided support);
- :mod:`.rollout`: playing an algorithm or a model, and the regret; :mod:`.evaluation`: the family's
  hook (the student's online regret on unseen tasks, beside the algorithms').

Methods (registered ``policy.*``): ``dpt`` and ``ad`` (in-context bandit learners on the base
:class:`.base.PolicyModule`, the same model and loss with different targets); ``archive``
(DCG-MAP-Elites: a MAP-Elites archive distilled into one descriptor-conditioned policy); ``demo_ad``
(AD with a teacher's demonstration on another task in context, after EVOLvE); ``aacd`` (TacSL's asymmetric
actor-critic distillation: a privileged critic teaches a student that sees less).

Also: :mod:`.mdp` and :mod:`.ucbvi` (a tabular MDP and UCB-VI), :mod:`.evolve_fit` (EVOLvE's regret fit).
"""

from . import aacd, ad, archive, dpt, evolve_demos, horizon_views, views  # noqa: F401  (importing them registers the methods and the views)
