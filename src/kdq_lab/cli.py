"""The ``kdq-lab`` command: bad input exits with code 2, a system error with 1; one line, never a traceback."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kdq_lab import limits
from kdq_lab.config import DEFAULT_SEED, Paths
from kdq_lab.errors import KdqError
from kdq_lab.files import SkippedEntryWarning, atomic_dir, check_apart, check_replaceable
from kdq_lab.streams import text_errors
from kdq_lab.terminal import safe, safe_json

if TYPE_CHECKING:
    from kdq_lab.execution.runner import ExecOptions
    from kdq_lab.experiment.plan import PlanOptions

#: Item columns `recommend` prints under each title, with their labels
FACTS = (("topics", "주제"), ("difficulty", "난이도"), ("genres", "장르"))
#: Set (e.g. ``KDQ_LAB_DEBUG=1``) to see the traceback behind an error message.
DEBUG_ENV = "KDQ_LAB_DEBUG"
#: Characters of an unexpected exception's message shown in its one line.
UNEXPECTED_SHOWN = 300
FORCE_HELP = "replace --out even if it is a non-empty folder that kdq-lab did not make (its content is deleted)"


def _integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [``low``, ``high``], with a message saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not an integer, or more digits than Python converts
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, not {text!r}")
        if value > high:
            raise argparse.ArgumentTypeError(f"at most {high:,} is allowed, not {text!r}")
        return value

    return parse


def _number(text: str) -> float:
    """An argparse type: a finite number, with a message saying so."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}")
    return value


def _seconds(text: str) -> float:
    """An argparse type: seconds > 0 (at most :data:`~kdq_lab.limits.MAX_TUNING_SECONDS`)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    if value > limits.MAX_TUNING_SECONDS:
        raise argparse.ArgumentTypeError(f"at most {limits.MAX_TUNING_SECONDS:,} seconds are allowed, not {text!r}")
    return value


_seed = _integer(0, limits.MAX_SEED)
_k = _integer(1, limits.MAX_K)
_workers = _integer(1, limits.MAX_WORKERS)


def _say(text: object, error: bool = False) -> None:
    """Print a line (or lines) to stdout, or stderr: control characters and bidi overrides escaped."""
    print(safe(text, multiline=True), file=sys.stderr if error else sys.stdout)


def describe_os_error(exc: OSError) -> str:
    """One line: the path(s) and the cause, e.g. ``/data/out: Permission denied``."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    return safe(f"{paths or '(no path given)'}: {exc.strerror or exc}")


def _generate(args: argparse.Namespace) -> int:
    import kdq_lab
    from kdq_lab.data.catalog import generate_catalog
    from kdq_lab.data.plants import Plant

    paths = Paths.default()
    check_apart(
        Path(args.out),
        {
            "the lab's notebooks folder": paths.notebooks,
            "the lab's source folder": paths.root / "src",
            "the lab's installed package": Path(kdq_lab.__file__).parent,
        },
    )
    plant = Plant(tuple(args.inert or ()), args.random_occupation, args.hidden_taste)
    out = generate_catalog(
        Path(args.out), scale=args.scale, seed=args.seed, force=args.force, file_format=args.format, plant=plant
    )
    _say(f"wrote {out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from kdq_lab.data.movielens import import_movielens

    out = import_movielens(Path(args.src), Path(args.out), force=args.force)
    _say(f"wrote {out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from kdq_lab.data.validate import check_dataset
    from kdq_lab.errors import format_problems

    problems, warnings = check_dataset(Path(args.dataset))
    if warnings:
        _say(format_problems(warnings, f"warning: {args.dataset}", "warning"), error=True)
    if problems:
        _say(format_problems(problems, f"invalid dataset {args.dataset}"), error=True)
        return 2
    _say(f"{args.dataset}: valid" + (f" ({len(warnings)} warning(s) above)" if warnings else ""))
    return 0


def _split_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The split a command's flags ask for, flat: its kind, fractions, seed, and the option flags given."""
    from kdq_lab.data.splits import REGISTRY

    options = {name for kind in REGISTRY.values() for name in kind.option_names()}
    given = {name: getattr(args, name) for name in sorted(options) if getattr(args, name) is not None}
    shared = {"test_fraction": args.test_fraction, "validation_fraction": args.validation_fraction, "seed": args.seed}
    return {"kind": args.split, **shared, **given}


def _prepare(args: argparse.Namespace) -> int:
    from kdq_lab.data.registry import resolve_dataset
    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.data.store import prepare

    config = SplitConfig.from_dict(_split_settings(args))  # an option the kind does not take is refused
    paths = Paths.default()
    folder = prepare(resolve_dataset(args.dataset, paths), config, paths.processed, force=args.force)
    _say(folder)
    return 0


def _plan_options(args: argparse.Namespace) -> PlanOptions:
    """What ``run`` and ``tune`` plan, from their flags."""
    from kdq_lab.experiment.plan import PlanOptions

    return PlanOptions(
        jobs=args.jobs,
        only=tuple(args.only or ()),
        overrides=tuple(args.set or ()),
        dataset=args.dataset,
        out=Path(args.out) if args.out else None,
        max_runs=getattr(args, "max_runs", limits.MAX_TRAININGS),
        tuned=True if getattr(args, "tuned", False) else None,
        storage=args.storage,
    )


def _exec_options(args: argparse.Namespace) -> ExecOptions:
    """How ``run`` and ``tune`` execute, from their flags."""
    from kdq_lab.execution.runner import ExecOptions

    return ExecOptions(
        force=args.force,
        fresh=getattr(args, "fresh", False),
        cluster=args.cluster,
        shared_dir=Path(args.shared_dir) if args.shared_dir else None,
        retries=getattr(args, "retries", 2),
    )


def _run(args: argparse.Namespace) -> int:
    from kdq_lab.app.run import dry_run, run_experiment

    if args.dry_run:
        _exec_options(args)  # a malformed cluster address is refused, as without --dry-run
        if args.track_uri is not None:  # and so is a malformed tracking URI
            from kdq_lab.app.tracking import check_uri

            check_uri(args.track_uri)
        _say(dry_run(Path(args.experiment), _plan_options(args), fresh=args.fresh))
        return 0
    outcome = run_experiment(
        Path(args.experiment), _plan_options(args), _exec_options(args), track=args.track, track_uri=args.track_uri
    )
    for failure in outcome.failed:
        _say(f"failed: {failure}", error=True)
    for stage in outcome.stages:
        _say(f"  {stage['stage']:<32} {stage['seconds']:8.1f} s")
    _say(
        f"report: {outcome.index} ({outcome.seconds:.0f} s"
        + (f", {len(outcome.failed)} failed)" if outcome.failed else ")")
    )
    return 0 if outcome.ok else 1


def _tune(args: argparse.Namespace) -> int:
    from kdq_lab.app.tune import TuneOptions, tune_experiment

    budget = TuneOptions(trials=args.trials, timeout=args.timeout)
    results, storage = tune_experiment(Path(args.experiment), budget, _plan_options(args), _exec_options(args))
    for r in results:
        best = "no complete trial" if r.best_value is None else f"best {r.best_value:.4f} (trial {r.best_trial})"
        _say(f"{r.name}: {r.complete} complete, {r.pruned} pruned, {r.failed} failed, {r.seconds:.0f} s; {best}")
    _say(f"studies: {storage}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from kdq_lab.data.registry import resolve_dataset
    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.evaluation.metrics import per_user_columns
    from kdq_lab.runs.results import metric_value
    from kdq_lab.runs.run import RunConfig, save_run, train_and_evaluate
    from kdq_lab.yamlfile import parse_assignment

    params = dict(parse_assignment(item) for item in args.set or [])
    split = SplitConfig.from_dict(_split_settings(args))  # before the dataset is resolved or anything trains
    paths = Paths.default()
    out = Path(args.out) if args.out else paths.reports / "models" / f"{Path(args.dataset).name}__{args.split}__lightfm"
    inputs = {"the dataset folder": resolve_dataset(args.dataset, paths), "the processed data folder": paths.processed}
    check_apart(out, inputs)
    check_replaceable(out, args.force)  # before training, not after
    config = RunConfig(
        run="lightfm", model="lightfm", params=params, split=args.split, ks=(args.k,), metric=f"ndcg@{args.k}"
    )
    result = train_and_evaluate(args.dataset, split, config, paths=paths)
    with atomic_dir(out, args.force) as tmp:
        save_run(result, tmp)
    for metric in per_user_columns([args.k]):  # every registered per-user metric
        value, lo, hi = metric_value(result.results, metric)
        _say(f"{metric:>14}: {value:.4f} [{lo:.4f}, {hi:.4f}]")
    _say(f"model: {out / 'model'}")
    return 0


def _recommend(args: argparse.Namespace) -> int:
    import json

    from kdq_lab.curate import read_profile, recommend
    from kdq_lab.models import load_model
    from kdq_lab.runs.run import model_folder

    folder = Path(args.model)
    if not (folder / "model.json").is_file():
        folder = model_folder(folder)  # a run folder: its (first seed's) saved model
    model = load_model(folder)
    profile = read_profile(Path(args.profile))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curation = recommend(
            model, profile, k=args.k, exclude=tuple(args.exclude or ()), diversify=args.diversify, lenient=args.lenient
        )
    for warning in caught:
        _say(f"warning: {safe(warning.message)}", error=True)
    if args.json:
        items = [
            record | explanation.to_dict() | {"terms_total": explanation.total}
            for record, explanation in zip(
                curation.items.drop(columns="reasons").to_dict(orient="records"), curation.explanations
            )
        ]
        document = json.dumps(
            {
                "profile": args.profile,
                "model": str(folder),
                "k": args.k,
                "diversify": args.diversify,
                "diversity_before": curation.diversity_before,
                "diversity_after": curation.diversity_after,
                "ignored_values": [{"column": u.column, "value": u.value} for u in curation.unknown],
                "notes": curation.notes,
                "items": items,
            },
            ensure_ascii=False,
            indent=2,
            default=float,
        )
        print(safe_json(document))  # valid JSON: the escapes mean the same characters
        return 0
    trained = model.provenance_
    origin = (
        f" (run {safe(trained['run'])} on {safe(trained['dataset'])})" if {"run", "dataset"} <= set(trained) else ""
    )
    _say(f"큰당큐 큐레이션 · {safe(args.profile)} · model {safe(folder)}{origin}")
    for row in curation.items.to_dict(orient="records"):
        data = {key: safe(value) for key, value in row.items() if value}  # one line each: a newline is escaped
        gloss = f" — {data['title_en']}" if "title_en" in data else ""
        kind = f"[{data['content_type']}] " if "content_type" in data else ""
        _say(f"{row['rank']:>2}. {kind}{data.get('title', data['item_id'])}{gloss}")
        facts = [f"{label} {data[c]}" for c, label in FACTS if c in data]
        _say(f"    {' · '.join([*facts, 'score ' + format(row['score'], '.3f')])}")
        _say(f"    why: {data.get('reasons', '')}")
    if args.diversify > 0:
        _say(
            f"intra-list diversity: {curation.diversity_before:.3f} -> {curation.diversity_after:.3f} "
            f"(MMR lambda={args.diversify:g})"
        )
    return 0


def _bench(args: argparse.Namespace) -> int:
    from kdq_lab.bench import builder, cluster, evaluation, ranking, scale, training

    modules = {"builder": builder, "evaluation": evaluation, "training": training, "cluster": cluster}
    for name, module in modules.items():
        if args.which in (name, "all"):
            module.run(repeats=args.repeats)
    if args.which == "scale":  # minutes, and the 1.2M-user catalog: never part of "all"
        scale.run()
    if args.which == "ranking":  # the 1.2M-user catalog too
        ranking.run()
    return 0


def _cluster_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: $KDQ_LAB_CLUSTER, else local)",
    )
    command.add_argument("--shared-dir", metavar="DIR",
                         help="cluster: a folder every worker sees; used instead of shipping data")  # fmt: skip


def _split_arguments(command: argparse.ArgumentParser, default: str) -> None:
    """``--split`` (a registered kind), its fractions and seed, and a ``--<option>`` flag per kind option (text)."""
    from kdq_lab.data.splits import REGISTRY

    kinds = "; ".join(f"{kind.name}: {kind.summary}" for kind in REGISTRY.values()).replace("%", "%%")
    command.add_argument("--split", default=default, choices=list(REGISTRY), help=f"the split kind ({kinds})")
    command.add_argument("--test-fraction", type=_number, default=0.2)
    command.add_argument("--validation-fraction", type=_number, default=0.1)
    command.add_argument("--seed", type=_seed, default=42)
    helps: dict[str, list[str]] = {}
    for kind in REGISTRY.values():
        for option in fields(kind.options):
            helps.setdefault(option.name, []).append(f"{kind.name}: {option.metadata.get('help', option.name)}")
    for name, texts in helps.items():
        command.add_argument(f"--{name.replace('_', '-')}", dest=name, help="; ".join(texts).replace("%", "%%"))


def _chromium() -> Path:
    from kdq_lab.report.checks import CHROMIUM_ENV, find_chromium

    chromium = find_chromium()
    if chromium is None:
        raise KdqError(f"no Chromium found (install Debian's chromium, or set {CHROMIUM_ENV} to the browser)")
    return chromium


def _check_report(args: argparse.Namespace) -> int:
    from kdq_lab.report.checks import browser_problems, linked_pages, static_problems

    report = Path(args.report)
    if not (report / "index.html").is_file():
        raise KdqError(f"{report}: no index.html; not a report folder")
    problems = static_problems(report)
    if args.browser:
        problems += browser_problems(report, _chromium())
    for problem in problems:
        _say(f"problem: {safe(problem)}", error=True)  # one line each, whatever the link holds
    checked = "files and links" + (", then in headless Chromium" if args.browser else "")
    _say(f"{report}: {len(linked_pages(report))} pages, {len(problems)} problem(s) ({checked})")
    return 1 if problems else 0


def _diff(args: argparse.Namespace) -> int:
    from kdq_lab.app.diff import diff_reports, diff_text

    diff, page = diff_reports(Path(args.old), Path(args.new))
    for line in diff_text(diff):
        _say(line)
    _say(f"wrote {page}")
    return diff.exit_code


def _screenshots(args: argparse.Namespace) -> int:
    from kdq_lab.report.checks import screenshots

    report = Path(args.report)
    if not (report / "index.html").is_file():
        raise KdqError(f"{report}: no index.html; not a report folder")
    for path in screenshots(report, _chromium()):
        _say(f"wrote {path}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its error escaped: it quotes the arguments it refuses, control characters and all.

    ``late`` adds a command's arguments when that command is parsed (or asked for ``--help``): the split
    kinds' flags need the split registry, whose import would cost every other command half a second.
    """

    late: Callable[[argparse.ArgumentParser], None] | None = None

    def error(self, message: str) -> NoReturn:
        super().error(safe(message, multiline=True))

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        if self.late is not None:
            late, self.late = self.late, None
            late(self)
        return super().parse_known_args(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kdq-lab", description="kdq_lab: recommender research for KDQ (큰당큐).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="write a built-in synthetic dataset")
    generate.add_argument("kind", choices=["kdq-catalog"], help="what to generate")
    generate.add_argument("--scale", choices=["tiny", "small", "default", "large"], default="default")
    generate.add_argument("--seed", type=_seed, default=DEFAULT_SEED)
    generate.add_argument(
        "--format", choices=["csv", "parquet"], default=None, help="how tables are stored (default: parquet for large)"
    )
    generate.add_argument("--out", required=True, help="dataset folder to write (replaced whole)")
    generate.add_argument("--force", action="store_true", help=FORCE_HELP)
    planted = generate.add_argument_group("planted effects (checks with a known answer; default: none)")
    planted.add_argument("--inert", action="append", metavar="FIELD", help="a user field written shuffled: no effect")
    planted.add_argument("--random-occupation", metavar="NAME", help="users with this occupation behave at random")
    planted.add_argument("--hidden-taste", type=_number, default=1.0, help="scale of hidden personal taste, 0..1")
    generate.set_defaults(run=_generate)

    importer = commands.add_parser("import", help="convert a public dataset into the data contract")
    importer.add_argument("kind", choices=["movielens"], help="source format (MovieLens-100k folder)")
    importer.add_argument("src", help="folder with u.data, u.user, u.item, u.genre, ...")
    importer.add_argument("--out", required=True, help="dataset folder to write (replaced whole)")
    importer.add_argument("--force", action="store_true", help=FORCE_HELP)
    importer.set_defaults(run=_import)

    validate = commands.add_parser("validate", help="check a dataset folder against its dataset.yaml")
    validate.add_argument("dataset", help="dataset folder")
    validate.set_defaults(run=_validate)

    prep = commands.add_parser("prepare", help="validate, split and store a dataset under data/processed/")
    prep.add_argument("dataset", help="dataset folder, a name under data/raw/, or a built-in name")
    prep.late = partial(_split_arguments, default="user_temporal")
    prep.add_argument("--force", action="store_true", help="rebuild even if the same split is stored")
    prep.set_defaults(run=_prepare)

    run = commands.add_parser("run", help="run an experiment through papermill into reports/<experiment>/")
    run.add_argument("experiment", help="experiment YAML (see notebooks/experiments/)")
    run.add_argument("--jobs", type=_workers, default=2, help="notebooks executed at once (processes)")
    run.add_argument(
        "--only", action="append", metavar="RUN", help="run only this run (name, glob or grid base name); repeatable"
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a YAML key, e.g. --set runs.lightfm_ids.params.epochs=5; repeatable",
    )
    run.add_argument("--dataset", help="run on this dataset instead of the experiment's")
    run.add_argument("--out", help="report folder (default reports/<experiment>/)")
    run.add_argument("--force", action="store_true", help=FORCE_HELP)
    run.add_argument("--dry-run", action="store_true", help="print what would run, what is cached and why; run nothing")
    run.add_argument("--tuned", action="store_true", help="use each run's best tuning trial (see `kdq-lab tune`)")
    run.add_argument("--fresh", action="store_true", help="run everything again; do not reuse finished runs")
    _cluster_options(run)
    run.add_argument("--retries", type=_integer(0, limits.MAX_RETRIES), default=2,
                     help="cluster: resubmit a run whose workers all died this many times")  # fmt: skip
    run.add_argument("--storage", help="Optuna storage URL of the studies (default: the report's tuning/optuna.db)")
    run.add_argument(
        "--max-runs",
        type=_integer(1, limits.MAX_TRAININGS_CEILING),
        default=limits.MAX_TRAININGS,
        help=f"refuse experiments of more trainings (runs x splits x seeds; default {limits.MAX_TRAININGS})",
    )
    run.add_argument(
        "--track",
        action="store_true",
        help="log each run x split to MLflow (default store: <report>/tracking/mlflow.db; needs the extra 'tracking')",
    )
    run.add_argument("--track-uri", metavar="URI", help="log to this MLflow tracking URI instead (implies --track)")
    run.set_defaults(run=_run)

    tune = commands.add_parser("tune", help="tune every run with a search: block, the same budget each (Optuna)")
    tune.add_argument("experiment", help="experiment YAML (see notebooks/experiments/)")
    budget = tune.add_mutually_exclusive_group()
    budget.add_argument(
        "--trials",
        type=_integer(1, limits.MAX_TRIALS),
        help="trials per run x split (default: the experiment's tuning:)",
    )
    budget.add_argument("--timeout", type=_seconds, help="seconds of trials per run x split")
    tune.add_argument("--only", action="append", metavar="RUN", help="tune only this run (name, glob, grid base)")
    tune.add_argument("--jobs", type=_workers, default=1, help="studies tuned at once (processes)")
    tune.add_argument("--storage", help="any SQLAlchemy URL (default: sqlite in reports/<experiment>/tuning/)")
    tune.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a YAML key; repeatable")
    tune.add_argument("--dataset", help="tune on this dataset instead of the experiment's")
    tune.add_argument("--out", help="the experiment's report folder, whose tuning/ keeps the studies")
    tune.add_argument("--force", action="store_true", help=FORCE_HELP)
    _cluster_options(tune)
    tune.set_defaults(run=_tune)

    train = commands.add_parser("train", help="train, evaluate and save a LightFM hybrid (for `recommend`)")
    train.add_argument("dataset", nargs="?", default="kdq-catalog", help="dataset name or folder")
    train.late = partial(_split_arguments, default="cold_users")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="a LightFM parameter, e.g. no_components=64")
    train.add_argument("--k", type=_k, default=10)
    train.add_argument("--out", help="run folder (default reports/models/<dataset>__<split>__lightfm/)")
    train.add_argument("--force", action="store_true", help=FORCE_HELP)
    train.set_defaults(run=_train)

    rec = commands.add_parser("recommend", help="curate items for a new user's profile, with reasons")
    rec.add_argument("--model", required=True, help="a saved model folder (or a run folder containing model/)")
    rec.add_argument("--profile", required=True, help="YAML or JSON profile: user feature columns, optional seen")
    rec.add_argument("--k", type=_k, default=10)
    rec.add_argument("--exclude", nargs="+", metavar="ITEM", help="item ids never to recommend")
    rec.add_argument("--diversify", type=_number, default=0.0, metavar="LAMBDA", help="MMR re-ranking, 0..1")
    rec.add_argument("--json", action="store_true", help="scores and every explanation term, as JSON")
    rec.add_argument("--lenient", action="store_true", help="ignore unknown profile values (with a warning)")
    rec.set_defaults(run=_recommend)

    bench = commands.add_parser("bench", help="benchmarks against LightFM, measured in the same run")
    bench.add_argument(
        "which",
        choices=["builder", "evaluation", "training", "cluster", "all", "scale", "ranking"],
        nargs="?",
        default="all",
    )
    bench.add_argument(
        "--repeats", type=_integer(1, limits.MAX_REPEATS), default=3, help="runs per side; medians are reported"
    )
    bench.set_defaults(run=_bench)

    check = commands.add_parser("check-report", help="check a report folder: files, links, no network (and a browser)")
    check.add_argument("report", help="report folder, e.g. reports/kdq-default")
    check.add_argument("--browser", action="store_true", help="also open every page in headless Chromium")
    check.set_defaults(run=_check_report)

    diff = commands.add_parser(
        "diff", help="what moved between two reports of one experiment (exit 1 if anything moved beyond resolution)"
    )
    diff.add_argument("old", help="the earlier report folder, e.g. reports/kdq-default/previous")
    diff.add_argument("new", help="the later report folder, e.g. reports/kdq-default (diff.html is written there)")
    diff.set_defaults(run=_diff)

    shots = commands.add_parser("screenshots", help="PNGs of a report's first screen and one run page")
    shots.add_argument("report", help="report folder, e.g. reports/kdq-default")
    shots.set_defaults(run=_screenshots)
    return parser


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Warnings as the command prints them, escaped (a warning may quote a value): the lab's own in one line."""
    if issubclass(category, SkippedEntryWarning):
        text = f"warning: {message}\n"
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line)
    print(safe(text, multiline=True), end="", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kdq-lab``; returns the exit code.

    Whatever escapes a command ends as one line on stderr: a :class:`KdqError` (bad input, exit 2),
    an ``OSError`` (the system: a full disk, a denied permission; exit 1), Ctrl-C (exit 130), and
    anything else, a bug or an input the lab does not yet refuse (exit 1, the traceback with
    ``KDQ_LAB_DEBUG=1``).
    """
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `kdq-lab ... | head` ends quietly
    # a path with undecodable bytes is printed, not a crash; the streams' own handling is restored at the end
    with text_errors((sys.stdout, sys.stderr), "backslashreplace"):
        return _command(argv)


def _command(argv: list[str] | None) -> int:
    """Parse and run a command; whatever escapes it becomes one line and an exit code (see :func:`main`)."""
    with warnings.catch_warnings():  # restores the warning printer when the command ends
        warnings.showwarning = _show_warning
        try:
            args = build_parser().parse_args(argv)  # a command's late arguments import modules: Ctrl-C is caught
            return args.run(args)
        except KdqError as exc:
            _debug_traceback()
            _say(f"error: {exc}", error=True)
            return 2
        except OSError as exc:  # read-only folder, disk full, permission denied: not a bug of the lab
            _debug_traceback()
            _say(f"error: {describe_os_error(exc)}", error=True)
            return 1
        except KeyboardInterrupt:
            _say("interrupted", error=True)
            return 130
        except Exception as exc:  # the last resort: one line, never a traceback (unless asked for)
            _debug_traceback()
            _say(f"error: {describe_unexpected(exc)}", error=True)
            return 1


def describe_unexpected(exc: BaseException) -> str:
    """One line for an exception the lab has no message for, with the way to see its traceback."""
    lines = str(exc).strip().splitlines()
    first = safe(lines[0]) if lines else ""
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if len(detail) > UNEXPECTED_SHOWN:
        detail = detail[: UNEXPECTED_SHOWN - 3] + "..."
    hint = f"rerun with {DEBUG_ENV}=1 to see the traceback"
    if isinstance(exc, RecursionError):
        return f"input nested too deeply to read ({detail}); {hint}"
    if isinstance(exc, MemoryError):
        return f"out of memory ({detail}): free memory or use a smaller input; {hint}"
    return f"{detail} (an input kdq-lab does not refuse clearly yet, or a bug); {hint}"


def _debug_traceback() -> None:
    """With ``KDQ_LAB_DEBUG`` set (not empty, not 0), print the traceback of the exception being handled."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
