"""torch-fidelity's InceptionV3 without torchvision.

torchmetrics' FID, KID and IS build on torch-fidelity's `FeatureExtractorInceptionV3`, but
`import torch_fidelity` runs a package `__init__` that imports every extractor, and the CLIP,
VGG and DINOv2 ones import torchvision, which does not import beside every torch release (and
is not a ganpipe dependency). The InceptionV3 module itself needs only torch. So when
torchvision is absent, `torch_fidelity` is registered as a bare namespace over its installed
folder: its submodules import on demand and the package `__init__` never runs. Torch-free and
cheap (two `find_spec` calls); a no-op when torchvision is installed or torch-fidelity is not.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def install() -> bool:
    """Register the bare `torch_fidelity` package if it is needed; True when it is in place."""
    if "torch_fidelity" in sys.modules:
        return True
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        return False
    if importlib.util.find_spec("torchvision") is not None:
        return True  # the package imports as it is
    pkg = types.ModuleType("torch_fidelity")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules["torch_fidelity"] = pkg
    return True


install()
