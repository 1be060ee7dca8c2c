"""A tiny vision transformer with learnable prompt tokens and a cosine classifier over stored class
vectors: the student of PromptKD (Li et al., CVPR 2024), at the scale of an 8×8 digit.

PromptKD's student is CLIP's image encoder (ViT-B/16, frozen) with deep visual prompts (the IVLP
design: ``n`` learnable tokens appended after the class and patch tokens at the input, replaced by a
fresh set of learnable tokens before each of the first ``prompt_depth`` blocks), a two-layer
projector to the teacher's feature width, and the logits ``scale · cos(projected image feature,
class vector)`` against the teacher's text features of the class names, computed once and stored.
:class:`PromptedTransformer` is that network: its "patches" are the rows of the image, its class
vectors a buffer (``class_vectors``) that a distillation method fills from the teacher
(``kd.promptkd`` writes the rows of the teacher's classifier there), and ``logit_scale`` a buffer too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError

#: The projectors from the encoder's width to the class vectors' width: PromptKD's
#: ``Feature_Trans_Module_two_layer`` (1×1 conv, BN, ReLU, 1×1 conv), one linear map, or none.
PROJECTORS = ("mlp", "linear", "none")


class Block(nn.Module):
    """Pre-norm transformer block as in CLIP: ``x + attn(ln(x))``, then ``x + mlp(ln(x))`` (GELU, 4× wide).

    Multi-head self-attention written out with ``scaled_dot_product_attention`` (the same map as
    ``nn.MultiheadAttention``, with less overhead per call on a 13-token sequence)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def make_projector(kind: str, width: int, out: int) -> nn.Module:
    """PromptKD's projector from ``width`` to ``out`` (see :data:`PROJECTORS`)."""
    if kind == "mlp":  # Feature_Trans_Module_two_layer: Conv1x1 -> BN -> ReLU -> Conv1x1 on a 1x1 map
        return nn.Sequential(nn.Linear(width, out), nn.BatchNorm1d(out), nn.ReLU(), nn.Linear(out, out))
    if kind == "linear":
        return nn.Linear(width, out)
    if width != out:
        raise ConfigError(
            f"projection='none' needs the encoder's width ({width}) to equal the class vectors' width ({out}); "
            "use projection='mlp' or 'linear', or set width=class_dim"
        )
    return nn.Identity()


class PromptedTransformer(nn.Module):
    """A ViT over the ``rows`` rows of an image, with deep learnable prompts, a projector and a
    cosine classifier: ``logits = logit_scale · cos(projector(encoder(x; prompts)), class_vectors)``.

    Args:
        in_features: pixels per input (inputs are flattened first; 64 for an 8×8 digit).
        rows: the number of "patches": the input is read as ``rows`` tokens of ``in_features // rows``.
        width, depth, heads: the encoder's token width, number of blocks, attention heads.
        prompts: learnable prompt tokens (PromptKD's ``N_CTX_VISION``; 0 for none).
        prompt_depth: blocks that get their own prompts (IVLP's ``PROMPT_DEPTH_VISION``): the input's
            tokens feed block 0; blocks ``1 .. prompt_depth − 1`` replace them with new ones.
        num_classes, class_dim: the class vectors' shape ``[num_classes, class_dim]``.
        projection: the projector from ``width`` to ``class_dim``, one of :data:`PROJECTORS`.

    The parameter names say what PromptKD trains: ``prompts``, ``layer_prompts.*`` and
    ``projector.*``; the rest is the encoder, frozen in the paper (``kd.promptkd`` freezes it).
    """

    def __init__(
        self,
        in_features: int = 64,
        rows: int = 8,
        width: int = 32,
        depth: int = 2,
        heads: int = 2,
        prompts: int = 4,
        prompt_depth: int = 2,
        num_classes: int = 10,
        class_dim: int = 128,
        projection: str = "mlp",
    ):
        super().__init__()
        if rows < 1 or in_features % rows:
            raise ConfigError(f"rows={rows} must divide in_features={in_features} (an 8x8 digit has 8 rows of 8)")
        if projection not in PROJECTORS:
            raise ConfigError(f"projection={projection!r} is not one of {PROJECTORS}")
        if prompts < 0 or (prompts and not 1 <= prompt_depth <= depth):
            raise ConfigError(
                f"prompts={prompts}, prompt_depth={prompt_depth}: give prompts >= 0 and, with prompts, a prompt_depth "
                f"in 1..depth={depth} (the blocks that get their own prompts)"
            )
        if width % heads:
            raise ConfigError(f"width={width} must be a multiple of heads={heads}")
        # kept as attributes so that a run records them and run.student() rebuilds the network
        self.in_features, self.rows, self.width, self.depth, self.heads = in_features, rows, width, depth, heads
        self.prompts, self.prompt_depth = prompts, (prompt_depth if prompts else 0)
        self.num_classes, self.class_dim, self.projection = num_classes, class_dim, projection
        scale = width**-0.5
        self.patch = nn.Linear(in_features // rows, width, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(rows + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln_post = nn.LayerNorm(width)
        # VPT at the input, VPT_shallow of blocks 1..prompt_depth-1 (std 0.02 as in CLIP's IVLP code)
        self.prompt_tokens = nn.Parameter(0.02 * torch.randn(prompts, width))
        self.layer_prompts = nn.ParameterList(
            nn.Parameter(0.02 * torch.randn(prompts, width)) for _ in range(max(self.prompt_depth - 1, 0))
        )
        self.projector = make_projector(projection, width, class_dim)
        self.register_buffer("class_vectors", F.normalize(torch.randn(num_classes, class_dim), dim=-1))
        self.register_buffer("logit_scale", torch.tensor(10.0))

    def prompt_parameters(self) -> list[nn.Parameter]:
        """The learnable prompts: the input's, then each prompted block's."""
        return [self.prompt_tokens, *self.layer_prompts] if self.prompts else []

    def set_class_vectors(self, vectors: torch.Tensor, logit_scale: float | None = None) -> None:
        """Store the class vectors (L2-normalised; shape ``[num_classes, class_dim]``) and the logit scale."""
        if tuple(vectors.shape) != (self.num_classes, self.class_dim):
            raise ConfigError(
                f"class vectors of shape {list(vectors.shape)} do not fit this student's "
                f"[num_classes={self.num_classes}, class_dim={self.class_dim}]; build it with those two set to them"
            )
        with torch.no_grad():
            self.class_vectors.copy_(F.normalize(vectors.to(self.class_vectors), dim=-1))
            if logit_scale is not None:
                self.logit_scale.fill_(float(logit_scale))

    def encode(self, x: torch.Tensor, use_prompts: bool = True) -> torch.Tensor:
        """The class token's output ``[batch, width]``; ``use_prompts=False`` puts zero prompts in
        place of the learned ones (same tokens, zero values)."""
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise ValueError(f"PromptedTransformer expects {self.in_features} input features, got {x.shape[1]}")
        tokens = self.patch(x.reshape(x.shape[0], self.rows, -1))
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        h = torch.cat([cls, tokens], 1) + self.positional_embedding
        prompts = self.prompt_parameters()
        if prompts:
            h = torch.cat([h, self._prompts(prompts[0], x.shape[0], use_prompts)], 1)
        h = self.ln_pre(h)
        for i, block in enumerate(self.blocks):
            if 0 < i < self.prompt_depth:  # replace the previous block's prompt outputs with this block's prompts
                h = torch.cat([h[:, : -self.prompts], self._prompts(prompts[i], x.shape[0], use_prompts)], 1)
            h = block(h)
        return self.ln_post(h[:, 0])

    @staticmethod
    def _prompts(p: torch.Tensor, batch: int, use_prompts: bool) -> torch.Tensor:
        return (p if use_prompts else torch.zeros_like(p)).expand(batch, -1, -1)

    def features(self, x: torch.Tensor, use_prompts: bool = True) -> torch.Tensor:
        """The projected, L2-normalised image features ``[batch, class_dim]``."""
        return F.normalize(self.projector(self.encode(x, use_prompts)), dim=-1)

    def forward(self, x: torch.Tensor, use_prompts: bool = True) -> torch.Tensor:
        """``logit_scale · features(x) @ class_vectorsᵀ`` (class vectors stored L2-normalised)."""
        return self.logit_scale * self.features(x, use_prompts) @ self.class_vectors.t()
