"""An offline feature extractor: a small CNN classifier trained on the labelled training split.

Inception weights cannot be assumed on every machine, so distances are also measured in the
feature space of a classifier trained on the data set itself (Fréchet classifier distance,
classifier Inception Score, conditional accuracy). It is trained once per prepared data set
(keyed by the manifest fingerprint) and cached on disk.

It trains on part of the training split only (`split_train`): the rest are real images it
never saw, the real side of real-vs-real floors in its feature space. Features of images a
classifier was fitted to sit closer to its class centres than those of any other image, a
generator's included, so a floor measured on them would be too low.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganpipe.data.loading import load_manifest, load_tensors

FEATURE_DIM = 64
FLOOR_POOL_MAX = 10_000  # training images kept from the classifier for floors, at most


def split_train(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(indices the classifier trains on, indices it never sees) of a training split of n
    images: a seeded half (at most FLOOR_POOL_MAX) is kept out, in random order."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = min(n // 2, FLOOR_POOL_MAX)
    return perm[k:], perm[:k]


def cache_key(manifest: dict, steps: int, seed: int, per_channel: bool = False) -> str:
    """The cached classifier's file name: data set, training length, seed, and the held-back split."""
    return f"{manifest['fingerprint'][:16]}-s{steps}-seed{seed}-heldback" + ("-channels" if per_channel else "")


def channel_view(images: Tensor, labels: Tensor, classes: int) -> tuple[Tensor, Tensor]:
    """A stacked set's channels as one-channel images with their own labels: [N, C, H, W] with
    mode labels (channel c's class is the c-th base-`classes` digit, most significant first)
    -> [N * C, 1, H, W] and [N * C] (image-major: image i's channels are rows i*C .. i*C+C-1)."""
    n, c = images.shape[:2]
    place = classes ** torch.arange(c - 1, -1, -1)
    return images.reshape(n * c, 1, *images.shape[2:]), (labels[:, None] // place % classes).reshape(-1)


def _classes(manifest: dict, per_channel: bool) -> tuple[int, int]:
    """(input channels, classes) of the data set's classifier."""
    if per_channel:
        return 1, int(manifest["extra"]["channel_classes"])
    return manifest["channels"], manifest["num_classes"]


class SmallClassifier(nn.Module):
    def __init__(self, channels: int, num_classes: int, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(True), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(512, feature_dim), nn.ReLU(True),
        )  # fmt: skip
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _augment(x: Tensor, g: torch.Generator) -> Tensor:
    """Random shifts of up to 1/8 of the image: a classifier that generalises to G's outputs."""
    pad = max(1, x.shape[-1] // 8)
    xp = F.pad(x, (pad,) * 4, value=-1.0)
    i, j = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
    return xp[..., i : i + x.shape[-2], j : j + x.shape[-1]]


def train_classifier(
    data_dir: str | Path, steps: int = 600, seed: int = 0, batch_size: int = 128, per_channel: bool = False
) -> tuple[SmallClassifier, float]:
    """Train on the classifier's part of 'train' (`split_train`), report accuracy on 'test'.

    `per_channel`: a stacked set's (manifest `extra.channel_classes`) channel classifier, trained
    on every channel of those images as a one-channel image (`channel_view`)."""
    m = load_manifest(data_dir)
    if not m.get("num_classes"):
        raise ValueError("the classifier needs a labelled data set")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    tr = load_tensors(data_dir, "train")
    fit, _ = split_train(len(tr["image"]), seed)
    x, y = tr["image"][fit], tr["label"][fit]
    channels, classes = _classes(m, per_channel)
    if per_channel:
        x, y = channel_view(x, y, classes)
    model = SmallClassifier(channels, classes)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(batch_size, len(x)),), generator=g)
        loss = F.cross_entropy(model(_augment(x[idx], g)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    te = load_tensors(data_dir, "test")
    xt, yt = channel_view(te["image"], te["label"], classes) if per_channel else (te["image"], te["label"])
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return model, acc


def load_or_train(
    data_dir: str | Path, cache_dir: str | Path, steps: int = 600, seed: int = 0, per_channel: bool = False
) -> tuple[SmallClassifier, float]:
    """The cached classifier for this prepared data set (by fingerprint), training it if needed."""
    m = load_manifest(data_dir)
    key = cache_key(m, steps, seed, per_channel)
    cache = Path(cache_dir) / "classifiers"
    wpath, ipath = cache / f"{key}.pt", cache / f"{key}.json"
    model = SmallClassifier(*_classes(m, per_channel))
    if wpath.is_file() and ipath.is_file():
        model.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
        return model.eval(), json.loads(ipath.read_text())["test_accuracy"]
    model, acc = train_classifier(data_dir, steps, seed, per_channel=per_channel)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = wpath.with_suffix(".partial")
    torch.save(model.state_dict(), tmp)
    tmp.replace(wpath)
    ipath.write_text(json.dumps({"test_accuracy": acc, "steps": steps, "seed": seed}))
    return model, acc


@torch.no_grad()
def extract(model: SmallClassifier, images: Tensor, batch: int = 512) -> tuple[Tensor, Tensor]:
    """(features, logits) for images in [-1, 1], computed on the model's device, returned on the CPU."""
    from ganpipe.evaluate.progress import progress

    device = next(model.parameters()).device
    feats, logits = [], []
    with progress("classifier features", total=len(images)) as advance:
        for i in range(0, len(images), batch):
            f = model.features(images[i : i + batch].to(device).float())
            feats.append(f.cpu())
            logits.append(model.head(f).cpu())
            advance(len(f))
    return torch.cat(feats), torch.cat(logits)
