"""The ``surrogate`` command.

``surrogate run CASE [KEY=VALUE ...] [--redo STAGE ...] [--quiet]`` runs (or finishes) a whole
study: dataset, LES baselines, surrogates, rollouts and the report (see :mod:`surrogate.study`);
stages whose inputs and settings did not change are not run again.
``surrogate dns CASE [KEY=VALUE ...] [--resume | --overwrite] [--quiet]`` runs a channel-flow
case file; every ``KEY=VALUE`` overrides one key of the case (``solver.dt=0.002``).
``surrogate les CASE ...`` does the same for a case with a subgrid-model (``sgs``) section.
``surrogate dataset CASE [KEY=VALUE ...] [--overwrite] [--quiet]`` makes (or finishes) a
filtered-DNS dataset from a dataset case file.
``surrogate train CASE [KEY=VALUE ...] [--resume | --overwrite] [--quiet]`` trains the surrogate of
a training case; ``surrogate rollout CASE [KEY=VALUE ...] [--overwrite]`` rolls it out.
``surrogate closure CASE [KEY=VALUE ...] [--resume | --overwrite] [--quiet]`` trains a neural
subgrid closure through the LES solver on a filtered-DNS dataset (see :mod:`surrogate.closure_training`).
``surrogate pretrained`` lists the shipped models; ``surrogate pretrained NAME --steps N --out FILE
[--initial FILE] [--t-start T] [--overwrite]`` rolls one out from its shipped window or from a
field file on its grid.
``surrogate validate RUN [RUN ...] --reference REF [--out DIR] [--labels L ...] [--t-start T]``
compares runs with a shipped reference (``mkm180``, ``lm180``, ``fdns180``, ...) or another run and
writes a report.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

from .config import ConfigError, load_case
from .fields import FieldError

if TYPE_CHECKING:
    from .rollout import RolloutResult

__all__ = ["main"]


def _add_case_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", help="case file (YAML), e.g. cases/dns_re180.yaml")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="override a key of the case, e.g. solver.dt=0.002"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surrogate", description="Turbulent channel flow: DNS, LES and neural-operator surrogates."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "run", help="run a whole study (dataset, LES, surrogates, rollouts, report); run again to resume"
    )
    _add_case_arguments(sub)
    sub.add_argument(
        "--redo", nargs="+", default=[], metavar="STAGE",
        help="run these stages again even if up to date: report, train/fno, les (every LES), ...",
    )
    for name, text in (
        ("dns", "run a direct numerical simulation case"),
        ("les", "run a large-eddy simulation case (a case with an sgs section)"),
    ):
        sub = commands.add_parser(name, help=text)
        _add_case_arguments(sub)
        start = sub.add_mutually_exclusive_group()
        start.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
        start.add_argument("--overwrite", action="store_true", help="start afresh, replacing an earlier run")
    sub = commands.add_parser("dataset", help="make a filtered-DNS dataset (run again to continue an unfinished one)")
    _add_case_arguments(sub)
    sub.add_argument("--overwrite", action="store_true", help="start afresh, deleting the folder's earlier dataset")
    sub = commands.add_parser("train", help="train a surrogate (a training case); runs under torchrun too")
    _add_case_arguments(sub)
    start = sub.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    start.add_argument("--overwrite", action="store_true", help="start afresh, replacing an earlier run")
    sub = commands.add_parser("closure", help="train a neural subgrid closure through the LES solver (a closure case)")
    _add_case_arguments(sub)
    start = sub.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    start.add_argument("--overwrite", action="store_true", help="start afresh, replacing an earlier run")
    sub = commands.add_parser("rollout", help="roll a trained surrogate out autoregressively (a training case)")
    _add_case_arguments(sub)
    sub.add_argument("--overwrite", action="store_true", help="replace an earlier rollout.nc")
    _add_pretrained_parser(commands)
    _add_validate_parser(commands)
    return parser


def _add_pretrained_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("pretrained", help="list the shipped models, or roll one out")
    sub.add_argument("name", nargs="?", help="a shipped model (without it: list them)")
    sub.add_argument(
        "--initial", type=Path, metavar="FILE", help="field file on the model's grid to start from (default: the shipped window)"
    )
    sub.add_argument("--t-start", type=float, metavar="T", help="time (h/u_tau) of the start snapshot (default: the last)")
    sub.add_argument("--steps", type=int, default=1000, metavar="N", help="number of predictions (default 1000)")
    sub.add_argument("--out", type=Path, metavar="FILE", help="rollout field file to write")
    sub.add_argument("--every", type=int, default=1, metavar="K", help="write every K-th prediction (default 1: all)")
    sub.add_argument("--compile", action="store_true", help="run the model through torch.compile (faster after a one-off cost)")
    sub.add_argument("--overwrite", action="store_true", help="replace an earlier file at --out")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_validate_parser(commands: argparse._SubParsersAction) -> None:
    from .references import REFERENCE_NAMES

    sub = commands.add_parser(
        "validate", help="compare runs with a reference (published DNS or another run) and write a report"
    )
    sub.add_argument(
        "runs", nargs="+", metavar="RUN",
        help="field file (fields.nc, rollout.nc), run folder or dataset folder (manifest.yaml: its test split)",
    )
    sub.add_argument(
        "--reference", required=True, metavar="REF",
        help=f"{', '.join(REFERENCE_NAMES)}, or a field file, run folder or dataset folder",
    )
    sub.add_argument("--out", type=Path, metavar="DIR", help="write report.md, report.html and the figures here")
    sub.add_argument("--labels", nargs="+", metavar="L", help="one label per run (default: the folder or file name)")
    sub.add_argument("--t-start", type=float, metavar="T", help="first time (h/u_tau) entering the statistics")


def _command_line(argv: Sequence[str] | None) -> str:
    """The command as typed, for the top of the report."""
    args = list(sys.argv[1:] if argv is None else argv)
    program = "python -m surrogate.cli" if argv is None and Path(sys.argv[0]).name == "cli.py" else "surrogate"
    return " ".join([program, shlex.join(args)])


def _validate(args: argparse.Namespace) -> int:
    from .evaluation import validate

    if args.overrides:
        print(f"surrogate validate: error: unrecognized arguments: {' '.join(args.overrides)}", file=sys.stderr)
        return 2
    try:
        table = validate(
            args.runs,
            args.reference,
            out_dir=args.out,
            labels=args.labels,
            t_start=args.t_start,
            command=args.command_line,
        )
    except ValueError as exc:  # ValidationError, FieldError, or a reference whose y+ range misses the run's
        print(f"surrogate validate: error: {exc}", file=sys.stderr)
        return 2
    columns = ("re_tau", "re_tau_error", "U_max_abs", "U_l2", "u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2")
    print(f"against {table.attrs['reference']}")
    print(" | ".join(["run", *columns]))
    for i, label in enumerate(table["run"].values):
        print(" | ".join([str(label), *(f"{float(table[name][i]):.4g}" for name in columns)]))
    if args.out is not None:
        print(f"report in {args.out / 'report.md'} and {args.out / 'report.html'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import load_train_case
    from .training import train

    train(load_train_case(args.case, args.overrides), resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    return 0


def _train_closure(args: argparse.Namespace) -> int:
    from .config import load_closure_case
    from .closure_training import train_closure

    path = train_closure(load_closure_case(args.case, args.overrides), resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    print(f"closure in {path}; run it with sgs: {{model: neural, parameters: {{weights: {path}}}}}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from .rollout import rollout_case
    from .config import load_train_case

    return _report_rollout(rollout_case(load_train_case(args.case, args.overrides), overwrite=args.overwrite, progress=not args.quiet))


def _report_rollout(result: "RolloutResult") -> int:
    if not result.completed:
        print(f"surrogate rollout: {result.status}; the {result.steps} steps before are in {result.path}", file=sys.stderr)
        return 1
    print(f"rollout of {result.steps} steps in {result.path}")
    return 0


def _pretrained(args: argparse.Namespace) -> int:
    from .pretrained import pretrained_models, rollout_pretrained

    if args.name is None:
        print("\n\n".join(card.summary() for card in pretrained_models()) or "no pretrained models are shipped")
        return 0
    if args.out is None:
        raise ConfigError(f"rolling out {args.name} needs --out FILE, the rollout file to write")
    if args.steps < 1:
        raise ConfigError(f"--steps must be a positive number of predictions, got {args.steps}")
    if args.every < 1:
        raise ConfigError(f"--every must be a positive number of predictions between written states, got {args.every}")
    try:
        result = rollout_pretrained(
            args.name, args.initial, args.steps, args.out, t_start=args.t_start, output_every=args.every,
            compile=args.compile, overwrite=args.overwrite, progress=not args.quiet,
        )
    except ValueError as exc:  # an unknown name, a start time outside the file
        raise ConfigError(str(exc)) from None
    return _report_rollout(result)


def _run_study(args: argparse.Namespace) -> int:
    from .study import run_study
    from .config import load_study_case

    summary = run_study(
        load_study_case(args.case, args.overrides), redo=args.redo, progress=not args.quiet, command=args.command_line
    )
    print(summary.read_text())
    print(f"summary in {summary}; reports in {summary.parent / 'report'}")
    return 0


def _make_dataset(args: argparse.Namespace) -> int:
    from .data import generate_dataset, load_dataset_case

    generate_dataset(load_dataset_case(args.case, args.overrides), overwrite=args.overwrite, progress=not args.quiet)
    return 0


def _run_simulation(args: argparse.Namespace) -> int:
    from .simulation import run_case

    case = load_case(args.case, args.overrides)
    if args.command == "dns" and case.sgs is not None:
        raise ConfigError(f"{args.case} has an 'sgs' section (model {case.sgs.model!r}): run it with 'surrogate les'")
    if args.command == "les" and case.sgs is None:
        raise ConfigError(
            f"{args.case} has no 'sgs' section: an LES case needs one, e.g. 'sgs: {{model: wale}}' "
            "(models: smagorinsky, wale, dynamic_smagorinsky, none)"
        )
    run_case(case, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    return 0


@contextmanager
def _console_messages() -> Iterator[None]:
    """The ``surrogate`` loggers' messages (INFO and above) on stdout, written between progress bars."""
    logger = logging.getLogger("surrogate")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``surrogate`` console script; returns the exit status."""
    from .solver.channel import SolverDivergedError
    from .data import DatasetFolderError, ManifestError, WindowError
    from .run_folder import RunFolderError
    from .closure_training import ClosureTrainingError
    from .training import TrainingError
    from .evaluation import ValidationError

    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = [*getattr(args, "overrides", []), *extra]
    args.command_line = _command_line(argv)
    handlers = {
        "run": _run_study,
        "dns": _run_simulation,
        "les": _run_simulation,
        "dataset": _make_dataset,
        "train": _train,
        "closure": _train_closure,
        "rollout": _rollout,
        "pretrained": _pretrained,
        "validate": _validate,
    }
    try:
        with _console_messages():
            return handlers[args.command](args)
    except (
        ConfigError,
        FieldError,
        FileNotFoundError,
        FileExistsError,
        RunFolderError,
        DatasetFolderError,
        ManifestError,
        WindowError,
        TrainingError,
        ClosureTrainingError,
        ValidationError,
    ) as exc:
        print(f"surrogate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a damaged netCDF/HDF5 file (the library's negative error codes); a read-only folder, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        if isinstance(exc.errno, int) and exc.errno < 0:
            print(f"surrogate {args.command}: error: cannot read{where}: {exc.strerror or exc} (a damaged or truncated "
                  "netCDF file?)", file=sys.stderr)
        else:
            print(f"surrogate {args.command}: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except SolverDivergedError as exc:
        print(f"surrogate {args.command}: the run diverged: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"surrogate {args.command}: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
