"""The teacher-output cache: a frozen teacher's logits on a fixed training set, computed once.

A method that reads its teacher only through ``teacher_logits(batch inputs)`` sets
``supports_teacher_cache = True``; :func:`nbdistill.fit` then turns the cache on where it is exact
(fixed, un-augmented training inputs, batches that carry their indices as the last element) and a
training step reads the teacher's logits by index instead of running the teacher.
"""

from __future__ import annotations

from typing import Any

import torch


class TeacherCache:
    """Mixin of :class:`~nbdistill.core.module.DistillModule`: ``teacher_logits`` with the cache."""

    #: Whether a method reads the teacher only through ``teacher_logits(batch inputs)``, so that
    #: the teacher's outputs on a deterministic training set can be computed once and reused.
    supports_teacher_cache: bool = False
    _teacher_cache: torch.Tensor | None = None
    _cached_batch: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teachers' logits on ``x`` (their mean when there are several).

        When the teacher cache is on and ``x`` is the current training batch's input tensor itself,
        the logits computed once for the whole training split are returned instead.
        """
        cached = self._cached_batch
        if cached is not None and x is cached[0]:
            return cached[1]
        outs = [t(x) for t in self.teachers]
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(0)

    @torch.no_grad()
    def cache_teacher_outputs(self, inputs: torch.Tensor, batch_size: int = 1024) -> None:
        """Compute the teachers' logits on every training input once (see :meth:`teacher_logits`)."""
        self._cached_batch = None
        parts = [self.teacher_logits(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
        self._teacher_cache = torch.cat(parts)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        cache = self._teacher_cache
        if cache is not None and isinstance(batch, (list, tuple)) and len(batch) > 2:
            if cache.device != batch[0].device:
                self._teacher_cache = cache = cache.to(batch[0].device)
            self._cached_batch = (batch[0], cache[batch[-1]])
