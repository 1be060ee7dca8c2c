"""Run by tests/core/test_ddp.py: Hinton KD under Lightning DDP with 2 CPU processes (gloo)."""

import sys

import torch

import nbdistill as nd

if __name__ == "__main__":
    root = sys.argv[1]
    torch.manual_seed(0)
    run = nd.fit(
        "kd.hinton",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(batch_size=32),
        max_epochs=2,
        runs_root=root,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
    )
    if run is not None:
        print("RUN", run.path, run.status, flush=True)
