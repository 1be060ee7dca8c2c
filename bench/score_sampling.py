"""One-step score students against their 50-step teacher: samples per second and distance to the data.

    python bench/score_sampling.py                       # consistency and DMD2 on two moons, 3 interleaved draws
    python bench/score_sampling.py --methods score.sid --epochs 60
    python bench/score_sampling.py --methods score.dmd score.progressive score.consistency

Each method distils the shipped ``moons-denoiser`` teacher (MLPDenoiser 2-128x4-2, 50-step DDIM) into a
one-step student of the teacher's architecture (started from the teacher's weights, ``init="teacher"``,
where the method has it) with ``nd.fit`` on ``TwoMoons(n_samples=4000)``; then, in one process, the
teacher's 50-step DDIM and each student's one step draw ``--samples`` points from the same seeded prior
noise, ``--reps`` times interleaved (teacher, student, teacher, ...; medians compared), and every set is
measured against ``--samples`` fresh data points by the energy distance.

It prints samples/s of each, the speed-up (goal >= 20x) and the energy-distance ratio student/teacher.
nbdistill's ``energy_distance`` is the squared energy distance D² (a V-statistic); the goal "<= 1.5x the
teacher's energy distance" is on D, so the script prints both ratios and checks D: D²-ratio <= 2.25.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import nbdistill as nd
from nbdistill.families.score.metrics import energy_distance
from nbdistill.families.score.samplers import sample
from nbdistill.families.score.schedule import CosineVP

TEACHER_STEPS = 50
SPEEDUP_GOAL, DISTANCE_GOAL = 20.0, 1.5
#: Hyper-parameters of each method's one-step run (its defaults otherwise).
SETTINGS = {
    "score.progressive": {"teacher_steps": 64, "steps": 1, "round_steps": 300, "init": "teacher"},
    "score.consistency": {"teacher_steps": 18, "solver": "heun", "ema_decay": 0.95, "steps": 1, "init": "teacher"},
    "score.dmd": {"regression_weight": 1.0, "init": "teacher"},
    "score.dmd2": {"fake_steps": 5, "gan_weight": 3e-3, "init": "teacher"},
    "score.sid": {"init": "teacher"},
}


def distil(method: str, epochs: int, seed: int, lr: float | None = None):
    hparams = {k: v for k, v in SETTINGS.get(method, {}).items() if k in {h.name for h in nd.get_method(method).hparams}}
    if lr is not None:
        hparams["lr"] = lr
    run = nd.fit(
        method,
        teacher=nd.zoo.teacher("moons-denoiser"),
        student=nd.models.MLPDenoiser(2, hidden=128, depth=4, time_embedding=32),
        data=nd.data.TwoMoons(n_samples=4000, batch_size=128),
        max_epochs=epochs,
        seed=seed,
        **hparams,
    )
    if run.status != "finished":
        raise SystemExit(f"{method} did not finish: {run.status} {run.error}")
    return run.student().eval()


def timed(net, steps: int, n: int, seed: int) -> tuple[torch.Tensor, float]:
    with torch.no_grad():
        start = time.perf_counter()
        x = sample(net, CosineVP(), n, steps, "ddim", torch.Generator().manual_seed(seed))
        return x, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["score.consistency", "score.dmd2"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None, help="the students' learning rate (each method's default otherwise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    teacher = nd.zoo.teacher("moons-denoiser").eval()
    students = {m: distil(m, args.epochs, args.seed, args.lr) for m in args.methods}
    data = nd.data.TwoMoons()
    pool, _ = data.generate(20_000, 777)
    reference = torch.as_tensor(pool[torch.randperm(20_000, generator=torch.Generator().manual_seed(7))[: args.samples]])

    times: dict[str, list[float]] = {"teacher": [], **{m: [] for m in students}}
    samples: dict[str, torch.Tensor] = {}
    for _ in range(args.reps):  # interleaved: teacher, each student, teacher, ...
        samples["teacher"], t = timed(teacher, TEACHER_STEPS, args.samples, args.seed)
        times["teacher"].append(t)
        for m, net in students.items():
            samples[m], t = timed(net, 1, args.samples, args.seed)
            times[m].append(t)

    ed_teacher = energy_distance(samples["teacher"], reference)
    floor = energy_distance(torch.as_tensor(data.generate(20_000, 778)[0][: args.samples]), reference)
    print(f"two moons, {args.samples} samples, {args.threads} thread(s), medians of {args.reps} interleaved draws")
    print(f"data floor: energy distance D² {floor:.5f} (two draws of data)")
    t_teacher = statistics.median(times["teacher"])
    print(f"teacher, {TEACHER_STEPS}-step DDIM: {args.samples / t_teacher:10.0f} samples/s   D² {ed_teacher:.5f}")
    for m in students:
        t = statistics.median(times[m])
        ed = energy_distance(samples[m], reference)
        speedup, d2_ratio = t_teacher / t, ed / ed_teacher
        d_ratio = d2_ratio**0.5
        ok = speedup >= SPEEDUP_GOAL and d_ratio <= DISTANCE_GOAL
        print(
            f"{m}, 1 step: {args.samples / t:10.0f} samples/s   D² {ed:.5f}   speed-up {speedup:.1f}x (goal >= {SPEEDUP_GOAL:g}x)   "
            f"D²-ratio {d2_ratio:.2f}, D-ratio {d_ratio:.2f} (goal <= {DISTANCE_GOAL:g})   {'MEETS' if ok else 'MISSES'} the goal"
        )


if __name__ == "__main__":
    main()
