r"""DMD2's GAN losses (Yin et al., "Improved Distribution Matching Distillation for Fast Image Synthesis",
NeurIPS 2024, §4.3): a classifier ``D`` on the fake score's hidden features of noisy points, its logit
high for real data, trained with the non-saturating softplus losses

    L_D = mean softplus(−D(x_real,t)) + mean softplus(D(x_fake,t))        (the classifier; fake-score step)
    L_G = mean softplus(−D(G(z)_t))                                       (the generator's GAN term)

(``softplus(−d) = −log σ(d)``; tianweiy/DMD2 ``compute_guidance_clean_cls_loss`` and
``compute_generator_clean_cls_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_classifier_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""``L_D = mean softplus(−D(real)) + mean softplus(D(fake))``: ``−log σ`` of real and ``−log(1 − σ)`` of fake logits."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""``L_G = mean softplus(−D(fake))``, the non-saturating generator loss ``−log σ(D(G(z)))``."""
    return F.softplus(-fake_logits).mean()
