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


def test_loss_recipes_give_each_loss_its_papers_optimiser_settings():
    import yaml

    from ganpipe.tune.space import trial_config

    base = yaml.safe_load((REPO / "configs/toy-grid25.yaml").read_text())
    sweep = load_sweep(REPO / "configs/sweeps/toy-grid25-losses.yaml")
    assert sweep.loss_recipes
    wgan = trial_config(base, sweep, {"loss.name": "wgan"})
    assert (wgan.optim.name, wgan.optim.lr_g, wgan.optim.lr_d) == ("rmsprop", 5e-5, 5e-5)
    assert (wgan.loss.clip_value, wgan.loss.n_critic) == (0.01, 5)
    gp = trial_config(base, sweep, {"loss.name": "wgan-gp"})
    assert (gp.optim.name, gp.optim.lr_g, gp.optim.lr_d, gp.optim.beta1, gp.optim.beta2) == ("adam", 1e-4, 1e-4, 0.0, 0.9)
    assert (gp.loss.n_critic, gp.loss.gp_weight) == (5, 10.0)
    hinge = trial_config(base, sweep, {"loss.name": "hinge"})  # no recipe of its own: the base config's
    assert (hinge.optim.name, hinge.optim.lr_g, hinge.optim.beta1, hinge.loss.n_critic) == ("adam", 1e-3, 0.5, 1)
    assert trial_config(base, sweep, {"loss.name": "wgan", "optim.lr_d": 1e-4}).optim.lr_d == 1e-4  # a sampled key wins
    sweep.loss_recipes = False
    assert trial_config(base, sweep, {"loss.name": "wgan"}).optim.name == "adam"


def test_rmsprop_builds_rmsprop_for_g_and_d_and_adam_stays_the_default(tmp_path):
    import torch

    from ganpipe.config import DataConfig, load_config
    from ganpipe.data.prepare import prepare
    from ganpipe.train.loop import build_recipe

    data = tmp_path / "ring8"
    prepare("ring8", data, DataConfig(source="ring8"))
    tiny = ["model.params.g_width=8", "model.params.d_width=8", "train.batch_size=16", "loss.name=wgan"]
    r = build_recipe(load_config("configs/toy-ring8.yaml", tiny + ["optim.name=rmsprop", "optim.lr_d=5e-5"]), data, torch.device("cpu"))
    assert type(r.opt_g) is torch.optim.RMSprop and type(r.opt_d) is torch.optim.RMSprop
    assert r.opt_d.param_groups[0]["lr"] == 5e-5
    r = build_recipe(load_config("configs/toy-ring8.yaml", tiny), data, torch.device("cpu"))
    assert type(r.opt_g) is torch.optim.Adam and r.opt_g.param_groups[0]["betas"] == (0.5, 0.999)


# -- PBT trials' resources ------------------------------------------------------------------------

def _pbt_base(*overrides: str) -> tuple[dict, object]:
    from ganpipe.config import load_config

    base = load_config(REPO / "configs/dcgan-digits.yaml", list(overrides)).to_dict()
    return base, load_sweep(REPO / "configs/sweeps/dcgan-digits-pbt.yaml")


def test_pbt_with_several_workers_per_trial_is_refused_at_config_time():
    from ganpipe.tune.space import validate

    base, sweep = _pbt_base("train.num_workers=2")
    with pytest.raises(ConfigError, match="pbt trains each trial in its own process.*num_workers=2 cannot be honoured") as e:
        validate(base, sweep)
    assert "asha or fifo" in e.value.hint
    assert validate(*_pbt_base("train.num_workers=1")) == []
    sweep.scheduler.name = "asha"  # Train-backed trials take any number of workers
    assert validate(base, sweep) == []


@pytest.mark.parametrize("pbt, use_gpu, bundle", [
    (True, True, {"CPU": 2.0, "GPU": 1.0}),  # a GPU per PBT trial, which trains in its own process
    (True, False, {"CPU": 2.0}),
    (False, True, {"memory": 2.0**20}),  # Train-backed: no CPU or GPU, the trial's workers reserve theirs
])
def test_trial_resource_request(pbt, use_gpu, bundle):
    """The placement group Tune asks for per trial (what the trainable carries into Tune)."""
    from ray.tune.trainable.function_trainable import wrap_function

    from ganpipe.tune.runner import make_trainable, pbt_trial, train_trial, trial_resources
    from ganpipe.tune.space import trial_config

    base, sweep = _pbt_base("train.cpus_per_worker=2")
    cfg = trial_config(base, sweep, {})
    trainable = make_trainable(pbt_trial if pbt else train_trial, {}, trial_resources(cfg, pbt, use_gpu))
    pgf = wrap_function(trainable).default_resource_request({})
    assert pgf.bundles == [bundle]


def test_pbt_trials_on_a_cluster_without_gpus_request_none(ray_session):
    """use_gpu auto on the (GPU-less) test cluster: PBT trials ask for CPUs only, as before."""
    from ganpipe.train.driver import resolve_gpu
    from ganpipe.tune.runner import trial_resources
    from ganpipe.tune.space import trial_config

    base, sweep = _pbt_base()
    cfg = trial_config(base, sweep, {})
    assert cfg.train.use_gpu == "auto" and resolve_gpu(cfg) is False
    assert trial_resources(cfg, True, resolve_gpu(cfg)) == {"CPU": cfg.train.cpus_per_worker}
