"""A dataset-distillation run resumes from its checkpoint: the network trained on the synthetic set to
evaluate it belongs to the evaluation hook, not to the module's state (it used to be saved as a
submodule, ``_eval_net``, and a fresh module refused the checkpoint's unexpected keys)."""

import torch

import nbdistill as nd


def _student():
    return nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1, norm="instance")


def _data():
    return nd.data.Digits(image=True, n_train=60, batch_size=30)


def test_a_stopped_dm_run_resumes_after_a_validation(runs_root):
    hp = {"ipc": 1, "eval_epochs": 1, "batch_real": 8}
    run = nd.fit("dataset.dm", student=_student(), data=_data(), max_epochs=1, seed=0, **hp)
    assert "val/student_acc" in run.metrics  # evaluated (a network trained on the set) before the checkpoint
    state = torch.load(run.path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert set(state) == {"images", "labels"} | {k for k in state if k.startswith("student.")}
    resumed = nd.resume(run, student=_student(), data=_data(), seed=0, max_epochs=2)
    assert resumed.status == "finished" and resumed.module.global_step == 4
    assert torch.equal(resumed.module.labels, run.module.labels)
