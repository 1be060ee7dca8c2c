"""Signal KD (ClST's SKD) against its formula, its 1-D networks, and a fit on MNIST-1D."""

import numpy as np
import pytest
import torch
from scipy.stats import entropy

import nbdistill as nd
from nbdistill.families.kd.losses import hinton_kd, signal_kd
from nbdistill.models.signal import (
    ConvProjectionAttention,
    ConvTransformer1D,
    SignalCNN,
)


def _logits(seed=0, b=6, c=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, generator=g, dtype=torch.float64), torch.randn(b, c, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("soft_weight", [0.0, 0.3, 1.0])
def test_skd_is_hinton_kd_with_the_weights_swapped(soft_weight):
    zs, zt = _logits()
    y = torch.arange(6) % 10
    ours = signal_kd(zs, zt, y, temperature=3.0, soft_weight=soft_weight)
    ref = hinton_kd(zs, zt, y, temperature=3.0, alpha=1.0 - soft_weight)
    assert torch.allclose(ours["loss"], ref["loss"], rtol=1e-12)


def test_skd_terms_by_an_independent_route():
    zs, zt = _logits(1)
    y = torch.tensor([1, 2, 3, 4, 5, 6])
    T = 4.0
    pt, ps = torch.softmax(zt / T, -1).numpy(), torch.softmax(zs / T, -1).numpy()
    soft = T**2 * np.mean([entropy(pt[i], ps[i]) for i in range(6)])
    ce = -np.mean(np.log(torch.softmax(zs, -1).numpy()[np.arange(6), y.numpy()]))
    out = signal_kd(zs, zt, y, T, 0.7)
    assert out["soft"].item() == pytest.approx(soft, rel=1e-10)
    assert out["ce"].item() == pytest.approx(ce, rel=1e-10)
    assert out["loss"].item() == pytest.approx(0.7 * soft + 0.3 * ce, rel=1e-10)
    same = signal_kd(zt, zt, y, T, 1.0)["loss"]
    assert abs(same.item()) < 1e-12


def test_convolutional_projection_attention_by_hand():
    torch.manual_seed(0)
    att = ConvProjectionAttention(dim=4, heads=2).double()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    xt = x.transpose(1, 2)
    q, k, v = (lin(conv(xt).transpose(1, 2)) for conv, lin in zip(att.convs, att.linears))
    outs = []
    for h in range(2):
        sl = slice(2 * h, 2 * h + 2)
        w = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / np.sqrt(2), -1)
        outs.append(w @ v[..., sl])
    assert torch.allclose(att(x), att.out(torch.cat(outs, -1)), atol=1e-12)


def test_signal_networks_shapes_and_errors():
    x = torch.randn(3, 1, 40)
    assert ConvTransformer1D((1, 40), 10)(x).shape == (3, 10)
    assert SignalCNN((1, 40), 10)(x).shape == (3, 10) and SignalCNN()(x.flatten(1)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"expects signals of shape \[1, 40\]"):
        SignalCNN()(torch.randn(3, 2, 40))
    teacher = nd.zoo.teacher("mnist1d-convtransformer")
    assert sum(p.numel() for p in teacher.parameters()) > 10 * sum(p.numel() for p in SignalCNN().parameters())


def test_images_are_refused_before_training(runs_root):
    with pytest.raises(nd.ConfigError, match="kd.signal distils 1-D signals"):
        nd.fit(
            "kd.signal",
            student=nd.models.MLP(64, [8], 10),
            teacher=nd.zoo.teacher("digits-mlp"),
            data=nd.data.Digits(n_train=100),
        )
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_fit_on_mnist1d():
    data = nd.data.MNIST1D(num_samples=200)
    run = nd.fit("kd.signal", student=SignalCNN(), teacher=nd.zoo.teacher("mnist1d-convtransformer"), data=data, max_epochs=1)
    m = run.metrics
    assert run.status == "finished" and 0.0 <= m["test/student_acc"] <= 1.0
    assert m["test/teacher_acc"] > 0.85  # the zoo teacher on signals of the same generator


@pytest.mark.slow
def test_example_config_runs_from_the_cli(run_example_config, example_hparams):
    info = run_example_config("kd_signal_mnist1d.yaml", "kd.signal")
    assert example_hparams("kd_signal_mnist1d.yaml").items() <= info["hparams"].items()
