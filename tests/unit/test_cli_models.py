"""`ganpipe models`: every registered family and loss, one line each with what it is."""

from __future__ import annotations

from typer.testing import CliRunner

from ganpipe.cli import app
from ganpipe.gans import FAMILIES
from ganpipe.losses import LOSSES


def test_models_lists_every_family_and_loss_with_a_summary():
    out = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    rows = {line.split("│")[1].strip(): line for line in out.output.splitlines() if line.count("│") >= 3}
    for name in [*FAMILIES.names(), *LOSSES.names()]:
        summary = FAMILIES.get(name).summary if name in FAMILIES else LOSSES.get(name).summary
        assert summary, f"{name} has no summary"
        assert name in rows and summary in rows[name], (name, out.output)
    assert {"dcgan", "cgan", "pix2pix", "cyclegan", "biggan", "toy"} <= set(FAMILIES.names())
    assert set(LOSSES.names()) == {"minimax", "nonsaturating", "wgan", "wgan-gp", "hinge", "lsgan"}
