"""Sweep files: every shipped one validates, bad ones fail clearly, seeds fix the draws."""

from pathlib import Path

import pytest

from ganpipe.errors import ConfigError
from ganpipe.tune.runner import _searcher
from ganpipe.tune.space import load_sweep, to_tune

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweeps_validate(path):
    sweep = load_sweep(path)
    assert sweep.space and sweep.metric


def test_bad_domain_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space:\n  loss.name: {pick: [hinge]}\n")
    with pytest.raises(ConfigError, match="loss.name.*give exactly one of"):
        load_sweep(bad)


def _draws(seed, n=6):
    from ray.tune.experiment import Experiment

    sweep = load_sweep(REPO / "configs/sweeps/dcgan-digits-arch.yaml")
    sweep.seed, sweep.max_concurrent_trials = seed, n  # draw all n without finishing any
    gen = _searcher(sweep, "eval.fcd", "min")
    gen.add_configurations([Experiment("draws", run=lambda config: None, config=to_tune(sweep.space, sweep.search), num_samples=n)])
    return [gen.next_trial().config for _ in range(n)]


def test_seeded_random_search_repeats_its_draws():
    first, again, other = _draws(0), _draws(0), _draws(1)
    assert first == again
    assert first != other
    assert len({str(sorted(c.items())) for c in first}) > 1  # really random, not one config repeated


def test_seeded_search_keeps_the_concurrency_cap():
    """Tune applies max_concurrent_trials only to the generator it builds itself."""
    sweep = load_sweep(REPO / "configs/sweeps/dcgan-digits-arch.yaml")
    sweep.seed, sweep.max_concurrent_trials = 7, 3
    assert _searcher(sweep, "eval.fcd", "min").max_concurrent == 3


def _optuna_draws(seed, n=3):
    from ganpipe.tune.space import SweepConfig

    sweep = SweepConfig.model_validate(
        {"search": "optuna", "seed": seed, "max_concurrent_trials": n,
         "space": {"loss.name": {"choice": ["nonsaturating", "hinge"]}, "optim.lr_g": {"loguniform": [1.0e-4, 5.0e-4]}}}
    )
    search = _searcher(sweep, "eval.fcd", "min")
    search.set_search_properties("eval.fcd", "min", to_tune(sweep.space, sweep.search))
    draws = [search.suggest(f"t{i}") for i in range(n)]
    # A checkpoint between evaluations reports no metric: Optuna must skip it, not fail the sweep.
    search.on_trial_result("t0", {"step": 10, "training_iteration": 1})
    search.on_trial_result("t0", {"step": 20, "training_iteration": 2, "eval.fcd": 3.0})
    return draws


def test_seeded_optuna_search_repeats_its_draws_and_skips_results_without_the_metric():
    first, again, other = _optuna_draws(0), _optuna_draws(0), _optuna_draws(1)
    assert first == again
    assert first != other
