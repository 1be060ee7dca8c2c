"""kd.knfu end to end: short seeded federations through nd.fit, their events and views, a stop and resume,
and the inputs refused before training."""

from __future__ import annotations

import threading

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import nbdistill as nd  # noqa: E402
from nbdistill.core.errors import ConfigError, TrainingFailed  # noqa: E402
from nbdistill.core.run import EventLog  # noqa: E402
from nbdistill.core.views import VIEWS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KNFU_VIEWS = ("knfu_clients", "knfu_weights", "knfu_histograms")


def federate(fusion: str, **kw):
    torch.manual_seed(0)
    hp = {"clients": 4, "alpha": 0.3, "rounds": 3, "local_epochs": 1, "fusion": fusion, **kw}
    return nd.fit(
        "kd.knfu",
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(n_train=200, batch_size=50),
        max_epochs=1,
        seed=0,
        **hp,
    )


@pytest.mark.slow
def test_a_seeded_federation_logs_every_round_and_reruns_identically():
    run = federate("knfu")
    log = run.log
    steps, mean = log.scalars("knfu/mean_acc")
    assert run.status == "finished" and steps == [1, 2, 3]  # stops after `rounds` of its 4 steps
    assert 0.3 < mean[-1] <= 1.0  # far above chance (0.1) on each client's own labels
    clients = [log.scalars(f"knfu/client_acc/{k}")[1][-1] for k in range(4)]
    assert mean[-1] == pytest.approx(sum(clients) / 4)
    weights = torch.tensor(log.last("knfu/weights")["rows"])
    assert torch.allclose(weights.sum(1), torch.ones(4), atol=1e-5) and (weights > 0).all()
    # self.student is the median client: it scores as that client does
    chosen = int(log.last_value("knfu/student_client"))
    assert 0 <= chosen < 4
    again = federate("knfu").log.scalars("knfu/mean_acc")[1]
    assert again == pytest.approx(mean, abs=1e-6)


@pytest.mark.slow
def test_local_training_fuses_nothing_and_fedkd_averages_uniformly():
    local = federate("local").log
    assert torch.equal(torch.tensor(local.last("knfu/weights")["rows"]), torch.eye(4))
    fedkd = federate("fedkd").log
    assert torch.allclose(torch.tensor(fedkd.last("knfu/weights")["rows"]), torch.full((4, 4), 0.25))
    # the same split, seed and local steps: the three fusions see the same label histograms
    assert local.last("knfu/label_histogram")["rows"] == fedkd.last("knfu/label_histogram")["rows"]


@pytest.mark.slow
def test_knfu_views_draw_from_a_run_and_from_an_empty_log():
    log = federate("knfu", rounds=2).log
    for name in KNFU_VIEWS:
        for source in (log, EventLog()):
            fig, ax = plt.subplots()
            assert VIEWS[name](ax, source) is ax
            plt.close(fig)


def test_more_clients_than_examples_is_refused_before_training(runs_root):
    with pytest.raises(
        ConfigError,
        match=r"clients=61 simulated clients need at least one training example each, but the training split has 60; lower clients to at most 60",
    ):
        nd.fit(
            "kd.knfu",
            student=nd.models.MLP(64, [8], 10),
            data=nd.data.Digits(n_train=60, batch_size=30),
            clients=61,
            max_epochs=1,
        )


def test_fewer_training_steps_than_rounds_is_refused():
    with pytest.raises((ConfigError, TrainingFailed), match=r"3 rounds need 3 steps, but 1 epochs of 2 batches leave 2"):
        nd.fit(
            "kd.knfu", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=60, batch_size=30), rounds=3, max_epochs=1
        )


@pytest.mark.slow
def test_a_stopped_federation_resumes_to_the_uninterrupted_result():
    full = federate("knfu", rounds=4)
    stop = threading.Event()
    part = federate(
        "knfu", rounds=4, stop_event=stop, observers=[lambda e: e["name"] == "knfu/mean_acc" and e["step"] >= 2 and stop.set()]
    )
    assert part.status == "stopped" and part.log.scalars("knfu/mean_acc")[0][-1] < 4
    torch.manual_seed(0)
    resumed = nd.resume(
        part, student=nd.models.MLP(64, [16], 10), data=nd.data.Digits(n_train=200, batch_size=50), max_epochs=1, seed=0
    )
    assert resumed.status == "finished"
    steps, values = resumed.log.scalars("knfu/mean_acc")
    assert steps[-1] == 4 and values[-1] == pytest.approx(full.log.scalars("knfu/mean_acc")[1][-1], abs=1e-6)
    for a, b in zip(full.module.client_models.parameters(), resumed.module.client_models.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
