"""A dataset method in the live panel: controls from its hyper-parameters, its own views drawn live."""

import pytest

import nbdistill as nd


@pytest.mark.slow
def test_panel_trains_a_dataset_method_and_draws_its_views():
    data = nd.data.Digits(image=True, n_train=60, batch_size=30)
    student = nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1)
    panel = nd.panel("dataset", student=student, data=data, method="dataset.dm", max_epochs=1)
    try:
        assert {"ipc", "augment", "eval_epochs", "lr", "batch_real"} <= set(panel.hparams)
        panel.start(ipc=1, eval_epochs=1, batch_real=8)
        run = panel.wait(timeout=300)
        assert panel.error is None, panel.error
        assert panel.status == "finished" and run.status == "finished"
        assert panel.redraws >= 1
        assert panel.renderer.fallback_reason is None  # the drawing worker loaded this family's views
        assert panel.log.of("dd/images")
    finally:
        panel.close()
