"""The ``nbdistill`` command: ``fit --config``, ``resume``, ``runs``, ``demo`` and ``lab``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .core.errors import NbDistillError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="nbdistill", description="Learn and explore distillation.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "fit",
        help="train a method from a YAML config (LightningCLI; see examples/*.yaml; -v: the parser's full message)",
        add_help=False,
    )
    runs = sub.add_parser("runs", help="list the runs under the runs root")
    runs.add_argument("--root", help="runs root (default $NBDISTILL_RUNS or ./nbdistill-runs)")
    demo = sub.add_parser("demo", help="Hinton KD vs the student alone on digits, over several seeds")
    demo.add_argument("--seeds", type=int, default=5)
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--out", default="nbdistill-demo.png", help="where to write the PNG")
    demo.add_argument("--quick", action="store_true", help="a small, fast version")
    resume = sub.add_parser("resume", help="continue a stopped (or lost) `nbdistill fit` run in its own folder")
    resume.add_argument("run_id", help="the run's id (see `nbdistill runs`) or its folder")
    resume.add_argument("--max_epochs", type=int, default=None, help="train to this many epochs (default: the run's own)")
    resume.add_argument("--root", help="runs root (default $NBDISTILL_RUNS or ./nbdistill-runs)")
    resume.add_argument("-v", "--verbose", action="store_true", help="on a bad config, show the parser's full message")
    lab = sub.add_parser("lab", help="start JupyterLab on the tutorials", add_help=True)
    lab.add_argument(
        "--dir", default=None, help="where to put the tutorials (default ./notebooks if it exists, else ./nbdistill-tutorials)"
    )

    if argv and argv[0] == "fit":
        return _fit(argv[1:])
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "runs":
            return _runs(args.root)
        if args.command == "demo":
            from .demo import run_demo

            run_demo(seeds=args.seeds, epochs=args.epochs, out_png=args.out, quick=args.quick)
            return 0
        if args.command == "lab":
            return _lab(args.dir, rest)
        if args.command == "resume":
            return _resume(args, rest)
    except NbDistillError as exc:
        print(f"nbdistill: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _fit(argv: list[str]) -> int:
    from .core.cli_fit import run_cli

    verbose = any(a in ("-v", "--verbose") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    return _train("fit", lambda: run_cli(argv, verbose=verbose))


def _resume(args: argparse.Namespace, extra: list[str]) -> int:
    from .core.cli_fit import resume_cli

    return _train(
        "resume", lambda: resume_cli(args.run_id, root=args.root, max_epochs=args.max_epochs, extra=extra, verbose=args.verbose)
    )


def _train(command: str, train) -> int:
    """Run ``train`` (a LightningCLI run); print the run's summary. 0 finished/stopped, 1 failed, 2 refused."""
    from .core.cli_fit import finished_run, summary
    from .core.errors import TrainingFailed

    try:
        cli = train()
    except SystemExit as exc:  # --help, or the parser's own report with --verbose
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except TrainingFailed as exc:
        if exc.run is not None:
            print(summary(exc.run))
        print(f"nbdistill {command}: {'the run failed' if exc.run is not None else 'error'}: {exc}", file=sys.stderr)
        return 1
    except NbDistillError as exc:
        print(f"nbdistill {command}: error: {exc}", file=sys.stderr)
        return 2
    run = finished_run(cli)
    if run is None:
        return 0
    print(summary(run))
    return 1 if run.status == "failed" else 0


def _runs(root: str | None) -> int:
    from .core.run import list_runs
    from .core.runfolder import runs_root

    found = list_runs(root)
    if not found:
        print(f"no runs under {runs_root(root).resolve()}")
        return 0
    rows = [("id", "method", "status", "started", "student acc", "gap")]
    for run in found:
        started = run.info.get("started")
        metrics = run.metrics
        acc = metrics.get("test/student_acc", metrics.get("val/student_acc"))
        gap = metrics.get("test/gap", metrics.get("val/gap"))
        rows.append(
            (
                run.id,
                run.method,
                run.status + (f" ({run.error[:40]})" if run.error else ""),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "?",
                f"{acc:.3f}" if acc is not None else "-",
                f"{gap:+.3f}" if gap is not None else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _lab(directory: str | None, extra: list[str]) -> int:
    from . import tutorials

    if directory is None:
        directory = "notebooks" if Path("notebooks", "00_tour.ipynb").exists() else "nbdistill-tutorials"
    target = Path(directory)
    if not (target / "00_tour.ipynb").exists():
        tutorials.copy_to(target)
        print(f"copied the tutorials into {target.resolve()}")
    cmd = [sys.executable, "-m", "jupyter", "lab", str(target / "00_tour.ipynb"), *extra]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        cmd.append("--allow-root")
    print("starting:", " ".join(cmd))
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
