"""Every registered split kind keeps the split contract, on the tiny catalog (with small predefined split files).

A new kind is covered by registering it: these tests are parametrised over the registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from split_fixture import with_predefined

from kdq_lab.cli import build_parser
from kdq_lab.data.leakage import leakage_checks
from kdq_lab.data.splits import (
    PARTS,
    REGISTRY,
    SplitConfig,
    evaluated_claims,
    prepared_claims,
    split_events,
    split_kind,
)
from kdq_lab.data.store import load_split, prepare
from kdq_lab.data.targets import target
from kdq_lab.data.validate import load_dataset
from kdq_lab.errors import KdqError
from kdq_lab.evaluation import EvalOptions, evaluate
from kdq_lab.models import TrainData, make_model

KINDS = list(REGISTRY)
#: Options of kinds whose options have no default the test dataset can serve.
OPTIONS = {"predefined": {"predefined": "fixed"}}


def settings(kind: str, **shared) -> dict:
    return {"kind": kind, **OPTIONS.get(kind, {}), **shared}


@pytest.fixture(scope="module")
def dataset(tiny_catalog, tmp_path_factory):
    return with_predefined(tiny_catalog, tmp_path_factory.mktemp("kinds") / "tiny")


@pytest.fixture(scope="module")
def raw(dataset):
    return load_dataset(dataset)


@pytest.fixture(scope="module")
def prepared(dataset, tmp_path_factory):
    """Each kind's split with validation, prepared and loaded."""
    root = tmp_path_factory.mktemp("processed")
    return {
        kind: load_split(prepare(dataset, SplitConfig.from_dict(settings(kind, validation_fraction=0.2)), root))
        for kind in KINDS
    }


def pairs(events: pd.DataFrame, part: str) -> set[tuple[int, int]]:
    rows = events[events["part"] == part]
    return set(zip(rows["user"].tolist(), rows["item"].tolist()))


@pytest.mark.parametrize("kind", KINDS)
def test_parts_are_disjoint_and_not_empty(kind, raw):
    events = split_events(raw, SplitConfig.from_dict(settings(kind, validation_fraction=0.2))).events
    train, validation, test = (pairs(events, part) for part in PARTS)
    assert train and validation and test, "validation is carved when asked"
    assert not train & test and not train & validation and not validation & test


@pytest.mark.parametrize("kind", KINDS)
def test_no_validation_unless_asked(kind, raw):
    events = split_events(raw, SplitConfig.from_dict(settings(kind, validation_fraction=0.0))).events
    assert not pairs(events, "validation") and pairs(events, "train") and pairs(events, "test")


@pytest.mark.parametrize("kind", KINDS)
def test_every_leak_count_is_zero(kind, prepared):
    checks = leakage_checks(prepared[kind])
    leaks = {name: value for name, value in checks.items() if name.startswith("leak")}
    assert len(leaks) >= 4 and not any(leaks.values()), leaks
    own = split_kind(kind).leakage
    assert own is None or set(own(prepared[kind])) <= set(leaks), "the kind's own leak counts are reported"


@pytest.mark.parametrize("kind", KINDS)
def test_seen_holds_every_known_positive(kind, prepared):
    split = prepared[kind]
    train, known = split.train.interactions, split.known.interactions
    assert train.nnz and split.seen_train.multiply(train).nnz == train.nnz, "every train positive is seen"
    assert split.seen_known.multiply(known).nnz == known.nnz, "every known positive is seen before test"


@pytest.mark.parametrize("kind", KINDS)
def test_withheld_items_have_no_train_positive(kind, prepared):
    split = prepared[kind]
    withheld = np.flatnonzero(split.withheld_until_test | split.withheld_until_validation)
    assert split.train.interactions[:, withheld].nnz == 0
    assert split.known.interactions[:, np.flatnonzero(split.withheld_until_test)].nnz == 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_seed_decides(kind, raw):
    first, again = (split_events(raw, SplitConfig.from_dict(settings(kind, seed=1))).events for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    other = split_events(raw, SplitConfig.from_dict(settings(kind, seed=2))).events
    if split_kind(kind).seeded:
        assert pairs(first, "test") != pairs(other, "test")
    else:
        assert pairs(first, "test") == pairs(other, "test"), "an unseeded kind's test part ignores the seed"


@pytest.mark.parametrize("kind", KINDS)
def test_covers_places_every_positive_event_in_its_part(kind, raw):
    cut = split_events(raw, SplitConfig.from_dict(settings(kind, validation_fraction=0.2)))
    events, n_items = cut.events, len(raw.items)
    user, item, time = (events[column].to_numpy() for column in ("user", "item", "time"))
    assert cut.validation is not None
    in_test = cut.test.covers(user, item, time, n_items)
    in_validation = ~in_test & cut.validation.covers(user, item, time, n_items)
    expected = np.select([in_test, in_validation], ["test", "validation"], "train")
    np.testing.assert_array_equal(events["part"].astype(str).to_numpy(), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_the_config_round_trips(kind):
    config = SplitConfig.from_dict(settings(kind, test_fraction=0.3, validation_fraction=0.15, seed=9))
    flat = config.to_dict()
    assert flat["kind"] == kind and set(flat) == set(split_kind(kind).accepted_keys())
    assert SplitConfig.from_dict(flat) == config
    assert SplitConfig.from_dict(json.loads(json.dumps(flat))) == config, "as a manifest stores it"


@pytest.mark.parametrize("kind", KINDS)
def test_options_the_kind_does_not_take_are_refused(kind):
    others = {name for spec in REGISTRY.values() for name in spec.option_names()} - set(split_kind(kind).option_names())
    for name in [*sorted(others), "bogus"]:
        with pytest.raises(KdqError, match=f"split kind '{kind}' takes no '{name}'; it takes: kind, test_fraction"):
            SplitConfig.from_dict({**settings(kind), name: "x"})


@pytest.mark.parametrize("kind", KINDS)
def test_the_cli_offers_the_kind_and_its_options(kind):
    parser = build_parser()
    for command in (["prepare", "some-dataset"], ["train"]):
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.get(kind, {}).items()]
        args = parser.parse_args([*command, "--split", kind, *flags])
        assert args.split == kind and all(getattr(args, name) == v for name, v in OPTIONS.get(kind, {}).items())


def test_the_cli_refuses_an_unknown_kind(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["prepare", "some-dataset", "--split", "by_magic"])
    assert exit_.value.code == 2 and "invalid choice: 'by_magic'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", KINDS)
def test_the_kinds_claims_hold(kind, prepared):
    split = prepared[kind]
    claims = prepared_claims(split, leakage_checks(split))
    assert all(claims.values()), claims
    model = make_model("popularity").fit(TrainData.from_split(split, refit=True))
    goal = target(split, "test", "train_positives")  # under "seen", a kind may leave only re-engagements
    per_user = evaluate(model, goal.positives, exclude=goal.exclude, options=EvalOptions(history=goal.history))
    claims = evaluated_claims(split, per_user)
    assert len(per_user) and all(claims.values()), claims


def test_the_readme_lists_every_kind_as_registered():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `") and line.endswith(("| yes |", "| no |"))]
    expected = [
        f"| `{kind.name}` | {kind.summary} | {', '.join(f'`{o}`' for o in kind.option_names()) or '—'} | "
        f"{'yes' if kind.seeded else 'no'} |"
        for kind in REGISTRY.values()
    ]
    assert rows == expected
