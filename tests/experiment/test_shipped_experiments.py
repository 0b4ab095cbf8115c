"""The shipped experiments do what their comments claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdq_lab.experiment.schema import Experiment, load_experiment
from kdq_lab.models import LightFMConfig

EXPERIMENTS = Path(__file__).resolve().parents[2] / "notebooks" / "experiments"


@pytest.fixture(scope="module")
def movielens(ml100k_source, tmp_path_factory) -> str:
    from kdq_lab.data.movielens import import_movielens

    return str(import_movielens(ml100k_source, tmp_path_factory.mktemp("ml") / "ml-100k"))


def load(name: str, dataset: str | None = None) -> Experiment:
    return load_experiment(EXPERIMENTS / f"{name}.yaml", [f"dataset={dataset}"] if dataset else [])


def lightfm(experiment: Experiment, run: str) -> LightFMConfig:
    run_def = experiment.runs[run]
    kind, params = run_def.model, run_def.params
    assert kind == "lightfm"
    return LightFMConfig(**params)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXPERIMENTS.glob("ml100k-*.yaml")))
def test_movielens_experiments_say_what_they_follow_and_where_they_differ(name):
    text = (EXPERIMENTS / f"{name}.yaml").read_text(encoding="utf-8")
    assert "# Follows:" in text and "Differs" in text


def test_quickstart_genre_hybrid_uses_fetch_movielens_features(movielens):
    experiment = load("ml100k-quickstart", movielens)
    for components in (10, 30):
        config = lightfm(experiment, f"genres-no_components={components}")
        uses, items = config.side(False)
        assert uses and config.item_columns == ("genres",) and config.features == "items"
        assert items.identity and items.normalize == "none", "identity plus genres, unnormalised"
        assert config.epochs == 30 and config.patience is None and config.loss == "warp"
    assert experiment.exclude == "train_positives" and not experiment.refit


def test_temporal_runs_the_full_hybrid_normalised_and_not(movielens):
    experiment = load("ml100k-temporal", movielens)
    sides = {(lightfm(experiment, r).side(True)[1].normalize, lightfm(experiment, r).features)
             for r in experiment.runs if r.startswith("lightfm_hybrid")}  # fmt: skip
    assert sides == {("none", "both"), ("l1", "both")}
    assert experiment.exclude == "seen" and len(experiment.seeds) >= 3


def test_cold_users_has_the_metadata_only_user_variant(movielens):
    experiment = load("ml100k-cold-users", movielens)
    config = lightfm(experiment, "lightfm_metadata_users")
    users, items = config.side(True)[1], config.side(False)[1]
    assert config.features == "both" and not users.identity and items.identity


def test_default_runs_lightfm_variants_with_three_seeds():
    experiment = load("kdq-default")
    lightfm_runs = [r for r, run in experiment.runs.items() if run.model == "lightfm"]
    assert len(experiment.seeds) >= 3 and all(job.seeds == experiment.seeds for job in experiment.jobs(lightfm_runs))
    config = lightfm(experiment, "lightfm_profile_users")
    assert not config.side(True)[1].identity and config.side(False)[1].identity
    assert experiment.exclude == "seen"
