"""The teacher-output cache is exact: the same training as computing the teacher on every batch."""

import torch

import nbdistill as nd


def _fit(cache, **kw):
    torch.manual_seed(2)
    return nd.fit(
        "kd.hinton",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        max_epochs=2,
        cache_teacher=cache,
        **kw,
    )


def test_cached_and_uncached_training_are_identical():
    a, b = _fit(True), _fit(False)
    assert a.module._teacher_cache is not None and b.module._teacher_cache is None
    for p, q in zip(a.module.student.parameters(), b.module.student.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert a.scalars("train/kd")[1] == pytest_approx(b.scalars("train/kd")[1])


def pytest_approx(values):
    import pytest

    return pytest.approx(values, rel=1e-5)


def test_cache_only_where_it_is_exact():
    from nbdistill.core.fit import use_teacher_cache

    teacher = nd.zoo.teacher("digits-mlp")
    module = nd.build("kd.hinton", nd.models.MLP(64, [8], 10), teacher)
    data = nd.data.Digits()
    data.augments = True  # an augmenting pipeline: the teacher must see each augmented input
    assert not use_teacher_cache(module, data)
    only = nd.build("kd.student_only", nd.models.MLP(64, [8], 10), teacher)
    assert not use_teacher_cache(only, nd.data.Digits())  # its loss never reads the teacher
    data = nd.data.Digits()
    assert use_teacher_cache(module, data)
    x, y = data.dataset("train").tensors
    torch.testing.assert_close(module._teacher_cache, teacher(x))
    assert len(next(iter(data.train_dataloader()))) == 3
