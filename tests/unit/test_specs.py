"""The torch-free specs and the implementations name the same things, so config checks accept
exactly what training, evaluation and data preparation can do."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from ganpipe.data.sources import IMPORTERS, SOURCES
from ganpipe.evaluate.metrics import METRICS
from ganpipe.gans import FAMILIES, SAMPLERS
from ganpipe.losses import LOSSES
from ganpipe.specs.families import FAMILY_SPECS
from ganpipe.specs.losses import LOSS_SPECS
from ganpipe.specs.metrics import METRIC_NAMES
from ganpipe.specs.sources import IMPORTER_KINDS, SOURCE_KINDS


def test_families_match_their_specs():
    assert FAMILIES.names() == SAMPLERS.names() == FAMILY_SPECS.names()
    for name in FAMILY_SPECS:
        recipe, spec = FAMILIES.get(name), FAMILY_SPECS.get(name)
        assert (recipe.Params, recipe.data_kinds, recipe.summary) == (spec.Params, spec.data_kinds, spec.summary)


def test_losses_match_their_specs():
    assert LOSSES.names() == LOSS_SPECS.names()
    for name in LOSS_SPECS:
        loss = LOSSES.get(name)
        assert {k: getattr(loss, k) for k in asdict(LOSS_SPECS.get(name))} == asdict(LOSS_SPECS.get(name))


def test_metrics_match_their_names():
    assert METRICS.names() == METRIC_NAMES.names()


def test_sources_match_their_kinds():
    for impl, spec in ((SOURCES, SOURCE_KINDS), (IMPORTERS, IMPORTER_KINDS)):
        assert {n: impl.get(n).kind for n in impl} == {n: spec.get(n) for n in spec}


def test_a_catalog_refuses_a_name_without_a_spec():
    with pytest.raises(ValueError, match="no entry in ganpipe.specs"):
        METRICS.register("not-in-specs")(lambda ctx: None)
    assert "not-in-specs" not in METRICS
