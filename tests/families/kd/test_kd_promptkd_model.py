"""nd.models.PromptedTransformer, kd.promptkd's student: attention as nn.MultiheadAttention computes it,
deep prompts (IVLP) that replace the previous block's prompt outputs, and the cosine classifier."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nbdistill.core.errors import ConfigError
from nbdistill.models import PromptedTransformer
from nbdistill.models.prompted import Block


def test_block_attention_is_multihead_attention_float64():
    torch.manual_seed(0)
    block = Block(8, 2).double()
    reference = nn.MultiheadAttention(8, 2, batch_first=True).double()
    with torch.no_grad():
        reference.in_proj_weight.copy_(block.qkv.weight)
        reference.in_proj_bias.copy_(block.qkv.bias)
        reference.out_proj.weight.copy_(block.out.weight)
        reference.out_proj.bias.copy_(block.out.bias)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    torch.testing.assert_close(block.attention(x), reference(x, x, x, need_weights=False)[0], rtol=1e-12, atol=1e-12)


def ivlp_encode(model, x):
    """The IVLP forward written out: [cls, rows] + pos, the input prompts appended, ln_pre; before
    each block i in 1..prompt_depth-1 the last n tokens are replaced by that block's prompts."""
    tokens = model.patch(x.reshape(len(x), model.rows, -1))
    h = torch.cat([model.class_embedding.expand(len(x), 1, -1), tokens], 1) + model.positional_embedding
    h = model.ln_pre(torch.cat([h, model.prompt_tokens.expand(len(x), -1, -1)], 1))
    for i, block in enumerate(model.blocks):
        if 1 <= i < model.prompt_depth:
            h = torch.cat([h[:, : -model.prompts], model.layer_prompts[i - 1].expand(len(x), -1, -1)], 1)
        h = block(h)
    return model.ln_post(h[:, 0])


@pytest.mark.parametrize("prompt_depth", [1, 2, 3])
def test_deep_prompts_follow_ivlp(prompt_depth):
    torch.manual_seed(0)
    model = PromptedTransformer(width=8, heads=2, depth=3, prompts=2, prompt_depth=prompt_depth).double().eval()
    assert len(model.prompt_parameters()) == prompt_depth
    x = torch.randn(4, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), ivlp_encode(model, x), rtol=1e-12, atol=1e-12)
        expected = model.logit_scale * F.normalize(model.projector(ivlp_encode(model, x)), dim=-1) @ model.class_vectors.t()
        torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def test_shapes_images_and_bad_arguments():
    model = PromptedTransformer(width=8, heads=2, prompts=0).eval()
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)  # images are flattened
    assert model.prompt_parameters() == []
    with pytest.raises(ValueError, match="expects 64 input features, got 32"):
        model(torch.randn(2, 32))
    with pytest.raises(ConfigError, match="a prompt_depth in 1..depth=2"):
        PromptedTransformer(prompts=2, prompt_depth=3)
    with pytest.raises(ConfigError, match="width=10 must be a multiple of heads=4"):
        PromptedTransformer(width=10, heads=4)
    with pytest.raises(ConfigError, match=r"projection='conv' is not one of \('mlp', 'linear', 'none'\)"):
        PromptedTransformer(projection="conv")
    with pytest.raises(ConfigError, match=r"class vectors of shape \[10, 5\] do not fit"):
        model.set_class_vectors(torch.randn(10, 5))
