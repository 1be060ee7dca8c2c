"""What "the gap" is in the score family: the quality of the student's samples against the data.

:class:`SampleQuality` gathers the validation (or test) points, then has the student draw
``module.eval_samples`` points from a fixed seed (``module.draw_samples``: by default
``module.sampling_steps`` deterministic DDIM steps, :func:`.samplers.sample`) and logs :func:`.metrics.sample_metrics` of them against the
gathered points (energy distance, sliced Wasserstein, MMD; with the data module's exact
``.density``, mode coverage and log-likelihood too). The 2-D samples, the data and (once) the
exact density are written as events for the ``score_samples`` view.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.batches import as_pair
from ...core.errors import ConfigError
from ...core.evaluation import Evaluation
from .metrics import sample_metrics
from .views import write_density, write_image_samples, write_samples

#: Seed of the prior noise of the validation samples: the same noise every epoch, so the view shows the student move.
SAMPLE_SEED = 0


def _datamodule(module: Any) -> Any:
    return getattr(module.trainer, "datamodule", None) if module._trainer is not None else None


class SampleQuality(Evaluation):
    """Distances of the student's samples to the data (see the module docstring)."""

    def check_batch(self, module: Any, batch: Any, num_classes: int | None) -> None:
        """The batches hold data points ``x`` and the student (and teacher) map ``(x_t, t)`` to an
        x0-prediction of ``x``'s shape."""
        x = as_pair(batch)[0] if isinstance(batch, (list, tuple)) else batch
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
            raise ConfigError(
                f"{module.method_name} needs batches of data points (x, y) with x a float tensor [batch, ...], "
                f"got {type(x).__name__}; use e.g. nbdistill.data.TwoMoons()"
            )
        x = x[:2]
        t = torch.full((len(x),), 0.5, dtype=x.dtype, device=x.device)
        for who, net in (("student", module.student), ("teacher", module.teacher)):
            if net is None:
                continue
            was_training = net.training
            net.eval()
            try:
                with torch.no_grad():
                    out = net(x, t)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"the {who} cannot denoise the data's points of shape {list(x.shape[1:])}: {exc}; "
                    "it must be a denoiser called as forward(x_t, t)"
                ) from exc
            finally:
                net.train(was_training)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                got = list(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ConfigError(
                    f"the {who}'s output has shape {got} but the data's points have shape {list(x.shape[1:])}: "
                    f"a denoiser returns an x0-prediction shaped like its input (e.g. MLPDenoiser(dim={x[0].numel()}))"
                )

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        self.outputs.setdefault(stage, []).append(as_pair(batch)[0].detach().cpu())

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        parts = self.outputs.pop(stage, [])
        if not parts:
            return {}
        data = torch.cat(parts)
        steps = int(module.sampling_steps)
        samples = module.draw_samples(
            int(module.eval_samples), torch.Generator().manual_seed(SAMPLE_SEED), tuple(data.shape[1:]), data.dtype
        ).cpu()
        density = getattr(_datamodule(module), "density", None)
        flat = samples.reshape(len(samples), -1)
        finite = torch.isfinite(flat).all(1)
        metrics: dict[str, Any] = {"sampling_steps": steps}
        if finite.any():
            metrics.update(sample_metrics(flat[finite], data.reshape(len(data), -1), density=density))
        return {**metrics, "samples": samples, "data": data}

    def write_events(self, module: Any, writer: Any, stage: str, metrics: dict[str, Any]) -> None:
        """``samples/student`` (and ``samples/data``, ``density/data`` once) for the ``score_samples`` view; for
        image-shaped samples (digits), the grid ``samples/student_images`` instead."""
        samples, data = metrics.get("samples"), metrics.get("data")
        if samples is None:
            return
        step, steps = module.global_step, metrics["sampling_steps"]
        label = f"student ({steps} step{'' if steps == 1 else 's'})"
        if samples.dim() != 2 or samples.shape[1] != 2:
            write_image_samples(writer, "samples/student_images", samples, step=step, label=label, steps=steps)
            return
        write_samples(writer, "samples/student", samples, step=step, label=label, steps=steps)
        if getattr(self, "_data_written", False):
            return
        self._data_written = True
        write_samples(writer, "samples/data", data, step=step, label="data")
        density = getattr(_datamodule(module), "density", None)
        if density is not None and callable(getattr(density, "log_prob", None)):
            lo, hi = data.min(0).values, data.max(0).values
            pad = 0.15 * (hi - lo).clamp(min=1e-3)
            write_density(writer, density, (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]))
