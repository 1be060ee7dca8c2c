"""Held-out regret of DPT and AD at the end of the horizon, beside the classic algorithms.

Trains ``policy.dpt`` and ``policy.ad`` on Bernoulli bandits (AD's teacher: Thompson sampling) and on
linear bandits (AD's teacher: LinUCB; DPT's roll-in: Dirichlet or LinUCB's) with the settings the
tutorial uses, and prints, per suite: player, final cumulative regret on the held-out test tasks
(mean ± s.e. over tasks), and the wall time of each training. Run: ``python bench/policy_regret.py``.
"""

from __future__ import annotations

import sys
import time

import torch

import nbdistill as nd

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
H = 30


def suites():
    bern = dict(
        data=lambda: nd.data.BernoulliBandits(arms=5, horizon=H, n_tasks=2000, batch_size=64, data_seed=0),
        student=lambda: nd.models.ICTransformer(num_actions=5, max_context=H, width=32, depth=2),
        runs={"DPT (dirichlet)": ("policy.dpt", {}), "AD (thompson)": ("policy.ad", {"teacher_algorithm": "thompson"})},
    )
    lin = dict(
        data=lambda: nd.data.LinearBandits(arms=5, dim=2, horizon=H, n_tasks=2000, batch_size=64, data_seed=0),
        student=lambda: nd.models.ICTransformer(num_actions=5, max_context=H, obs_dim=10, width=32, depth=2),
        runs={
            "DPT (dirichlet)": ("policy.dpt", {}),
            "DPT (linucb roll-in)": ("policy.dpt", {"context_policy": "linucb"}),
            "AD (linucb)": ("policy.ad", {"teacher_algorithm": "linucb"}),
        },
    )
    return {"Bernoulli K=5": bern, "linear K=5 d=2": lin}


def final(run, who):
    event = run.log.last(f"test/regret/{who}")
    return event["y"][-1], event["se"][-1]


def main() -> None:
    torch.set_num_threads(1)
    for suite, spec in suites().items():
        print(f"\n== {suite}, horizon {H}, {EPOCHS} epochs ==")
        rows, baselines = [], None
        for name, (method, kwargs) in spec["runs"].items():
            torch.manual_seed(0)
            start = time.perf_counter()
            run = nd.fit(
                method, student=spec["student"](), data=spec["data"](), max_epochs=EPOCHS, lr=3e-3, eval_tasks=200, **kwargs
            )
            seconds = time.perf_counter() - start
            m, se = final(run, "student")
            rows.append((name, m, se, f"{seconds:.0f} s"))
            baselines = baselines or [
                (who, *final(run, who), "")
                for who in ("linucb", "thompson", "ucb", "greedy", "random")
                if run.log.last(f"test/regret/{who}")
            ]
        print(f"{'player':<22} {'R_H (test)':>16} {'train time':>10}")
        for name, m, se, t in rows + baselines:
            print(f"{name:<22} {m:7.2f} ± {se:5.2f} {t:>10}")


if __name__ == "__main__":
    main()
