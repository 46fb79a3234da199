"""Built-in `faces`: the 100 face crops of scikit-image's LFW subset (unlabelled, one class).

`skimage.data.lfw_subset()` ships 200 grayscale 25 x 25 crops: the first 100 are faces, the
rest non-faces. Like `digits`, they are materialised as an image folder under the raw data root
so the raw data is versioned with DVC; preparation resizes them (default 32 x 32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganpipe.data.sources import SOURCES, Source, plan_materialized, write_imagefolder

NUM_FACES = 100


def _materialize_faces(raw_root: Path) -> Path:
    from skimage.data import lfw_subset

    faces = lfw_subset()[:NUM_FACES]  # [100, 25, 25] floats in [0, 1]
    imgs = np.clip(faces * 255.0, 0, 255).round().astype(np.uint8)
    return write_imagefolder(raw_root / "faces", imgs, np.zeros(len(imgs), dtype=np.int64), ["face"])


SOURCES.add(
    "faces",
    Source(
        "faces",
        "images",
        "scikit-image LFW subset: 100 grayscale 25x25 face crops, one class",
        None,
        _materialize_faces,
        32,
        plan_materialized("faces"),
    ),
)
