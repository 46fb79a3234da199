import pytest
import yaml

from ganpipe.config import load_config, parse_overrides, save_config
from ganpipe.errors import ConfigError


def test_defaults_and_overrides_resolve():
    cfg = load_config("configs/dcgan-digits.yaml", ["train.steps=7", "loss.name=hinge", "model.params.g_width=8"])
    assert cfg.train.steps == 7 and cfg.loss.name == "hinge"
    assert cfg.model.params == {"g_width": 8, "d_width": 32, "d_norm": "batch", "pack": 1, "ema_decay": 0.999, "lr_final": 1.0, "decay_start": 0.0}  # family defaults filled in
    assert cfg.model_name == "ganpipe-dcgan-digits"


def test_override_values_are_typed():
    assert parse_overrides(["a.b=3", "a.c=0.5", "d=true", "e=[1, 2]", "f=text"]) == {
        "a": {"b": 3, "c": 0.5},
        "d": True,
        "e": [1, 2],
        "f": "text",
    }


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.stepz=3", "unknown key 'train.stepz'"),
        ("trian.steps=3", "unknown key 'trian'"),
        ("train.steps=abc", "'train.steps'"),
        ("train.steps=0", "'train.steps'"),
        ("loss.name=wgan_gp", "unknown loss 'wgan_gp'"),
        ("model.family=stylegan", "unknown model family 'stylegan'"),
        ("model.params.g_widht=3", "unknown key 'model.params.g_widht'"),
        ("data.image_size=24", "image_size=24 is not supported"),
        ("loss.name=wgan-gp", "BatchNorm"),
    ],
)
def test_bad_configs_are_clear_errors(override, fragment):
    with pytest.raises(ConfigError) as e:
        load_config("configs/dcgan-digits.yaml", [override])
    assert fragment in str(e.value)


def test_unknown_key_hint_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.stepz=1"])
    assert "steps" in e.value.hint and "batch_size" in e.value.hint


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    bad.write_text("train: {steps: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config("configs/dcgan-digits.yaml", ["train.steps=11"])
    p = save_config(cfg, tmp_path / "resolved.yaml")
    again = load_config(p)
    assert again.to_dict() == cfg.to_dict()
    assert again.run_name == cfg.run_name  # deterministic run name: resume finds the run
    assert load_config(p, ["train.steps=12"]).run_name != cfg.run_name
    assert yaml.safe_load(p.read_text())["train"]["steps"] == 11


def test_faults_section_is_an_error_that_says_where_it_went(tmp_path):
    from ganpipe.config import build_config, upgrade_saved

    p = tmp_path / "old.yaml"
    p.write_text("faults:\n  exit_at_step: 25\n")
    for args in ((p,), ("configs/dcgan-digits.yaml", ["faults.nan_loss_at_step=20"])):
        with pytest.raises(ConfigError, match="'faults' section was removed") as e:
            load_config(*args)
        assert "Faults(" in e.value.hint and "run_sweep" in e.value.hint
    # A config saved before the section left (every fault off) still reads back, under its run name.
    cfg = load_config("configs/dcgan-digits.yaml")
    saved = {**cfg.to_dict(), "faults": {"nan_loss_at_step": None, "raise_at_step": None, "exit_at_step": None}}
    assert build_config(upgrade_saved(saved)).run_name == cfg.run_name
    with pytest.raises(ConfigError):
        build_config(upgrade_saved({**saved, "faults": {"exit_at_step": 3}}))


def test_sync_bn_checks_and_run_names():
    base = load_config("configs/dcgan-digits.yaml")
    assert base.train.sync_bn is False
    on = load_config("configs/dcgan-digits.yaml", ["train.sync_bn=true"])
    assert on.run_name != base.run_name  # it changes training, so it names another run
    # At its default it is left out of the hash: the name this config had before the key existed.
    assert base.run_name == SHIPPED_RUN_NAMES["configs/dcgan-digits.yaml"]
    with pytest.raises(ConfigError, match="no BatchNorm"):
        load_config("configs/toy-ring8.yaml", ["train.sync_bn=true"])
    with pytest.raises(ConfigError, match="no BatchNorm"):
        load_config("configs/pix2pix-colorize.yaml", ["train.sync_bn=true", "model.params.norm=instance"])
    with pytest.raises(ConfigError, match="needs GPU workers"):
        load_config("configs/dcgan-digits.yaml", ["train.sync_bn=true", "train.use_gpu=false", "train.num_workers=2"])


# Run names of the shipped configs: keys added later, at their defaults, must not change them
# (a changed name retrains instead of reusing or resuming the run).
SHIPPED_RUN_NAMES = {
    "configs/biggan-digits.yaml": "biggan-digits-df27eba6ef",
    "configs/cgan-digits.yaml": "cgan-digits-2bc6ab20ef",
    "configs/cyclegan-textures.yaml": "cyclegan-textures-50d59d17ec",
    "configs/dcgan-digits.yaml": "dcgan-digits-9a7353e042",  # EMA of G and 8000 steps since 2026-12-06 (was d32d46c1c8)
    "configs/dcgan-faces.yaml": "dcgan-faces-0734383af5",
    "configs/pix2pix-colorize.yaml": "pix2pix-colorize-f2a8638b81",
    "configs/toy-grid25.yaml": "toy-grid25-3683bc848b",
    "configs/toy-ring8.yaml": "toy-ring8-3a52409ccd",
}


@pytest.mark.parametrize("path", sorted(SHIPPED_RUN_NAMES))
def test_added_keys_at_their_defaults_keep_run_names(path):
    assert load_config(path).run_name == SHIPPED_RUN_NAMES[path]


def test_added_keys_off_their_defaults_name_another_run():
    base = load_config("configs/biggan-digits.yaml")
    for key in ("model.params.ema_start=100", "model.params.standing_stats=16", "optim.name=rmsprop"):
        assert load_config("configs/biggan-digits.yaml", [key]).run_name != base.run_name
