"""kd.swing as a method (nbdistill/families/kd/pipelines/swing.py): bad input, the plain-KD switch,
canary scheduling and a short seeded fit with its exposure events."""

from __future__ import annotations

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.losses import hinton_kd


def teacher():
    return nd.zoo.teacher("digits-mlp")


def student():
    torch.manual_seed(0)
    return nd.models.MLP(64, [8], 10)


def test_tau_max_below_temperature_is_refused_before_training():
    with pytest.raises(ConfigError, match="tau_max=2.0 is below temperature=4.0"):
        nd.fit("kd.swing", teacher=teacher(), student=student(), data=nd.data.Digits(n_train=60), tau_max=2.0, max_epochs=1)


def test_several_teachers_are_refused():
    with pytest.raises(ConfigError, match="fine-tunes one teacher"):
        nd.get_method("kd.swing").module_class(student(), teachers=[teacher(), teacher()])


def test_a_single_training_example_is_refused():
    class One:
        num_classes = 10

        def dataset(self, split):
            return torch.utils.data.TensorDataset(torch.zeros(1, 64), torch.zeros(1, dtype=torch.long))

    module = nd.get_method("kd.swing").module_class(student(), teacher())
    with pytest.raises(ConfigError, match="at least 2 training examples"):
        module.check_data(One())


def prepared(n_train=60, **hparams):
    module = nd.get_method("kd.swing").module_class(student(), teacher(), **hparams)
    data = nd.data.Digits(n_train=n_train, batch_size=30)
    data.setup("fit")
    module.check_data(data)
    return module, data


def test_swing_off_without_canaries_is_hinton_kd():
    module, data = prepared(swing=False, canaries=0, temperature=3.0)
    x, y = next(iter(data.train_dataloader()))[:2]
    got = module.loss_terms((x, y))
    want = hinton_kd(module.student(x), module.teacher(x), y, 3.0, alpha=0.0)
    assert abs(got["loss"].item() - want["loss"].item()) < 1e-6


def test_the_teacher_is_fine_tuned_on_its_canaries_and_canaries_get_high_temperatures():
    module, data = prepared(n_train=None, canaries=5, canary_repeats=4, teacher_epochs=10, candidates=200)
    planted = module.planted
    assert len(planted) == 5
    assert (module.teacher(planted.x).argmax(1) == planted.y).float().mean() >= 0.8
    assert module.teacher_exposure.mean() > 4.0  # log2 200 ≈ 7.6 at most; ≈ 1.44 unseen
    train_x = data.dataset("train").tensors[0]
    tau_train, tau_canary = module.temperatures(train_x), module.temperatures(planted.x)
    assert tau_canary.mean() > 4 * tau_train.mean()  # random patterns are among the rarest examples
    assert tau_train.min() == module.temperature and tau_canary.max() <= module.tau_max


def test_each_canary_goes_into_the_batches_canary_repeats_times_an_epoch():
    module, _ = prepared(canaries=3, canary_repeats=5, teacher_epochs=0)
    counts = torch.bincount(torch.cat([module.canaries_of_batch(b) for b in range(1)]), minlength=3)
    assert counts.tolist() == [5, 5, 5]  # no trainer: one batch an epoch, every copy in it


@pytest.mark.slow
def test_short_fit_writes_teacher_and_student_exposure(tmp_path):
    def fit():
        return nd.fit(
            "kd.swing",
            teacher=teacher(),
            student=student(),
            data=nd.data.Digits(n_train=200, batch_size=50),
            max_epochs=2,
            canaries=4,
            candidates=100,
            teacher_epochs=20,
            runs_root=tmp_path,
            seed=0,
        )

    run = fit()
    log = run.log
    table = log.last("swing/exposure")
    assert table["columns"] == ["canary", "label", "teacher", "student", "tau"] and len(table["rows"]) == 4
    assert log.last_value("swing/max_exposure") == pytest.approx(6.643856, abs=1e-5)
    assert 0 <= log.last_value("swing/student_exposure") <= log.last_value("swing/max_exposure")
    assert log.last("swing/tau") is not None
    again = fit()
    assert again.log.last("swing/exposure")["rows"] == table["rows"]  # seeded: a rerun is the same
