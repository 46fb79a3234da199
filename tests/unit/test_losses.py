"""Each loss against values computed by hand from its definition."""

import math

import pytest
import torch

from ganpipe.errors import UnknownNameError
from ganpipe.losses import LOSSES, clip_weights, gradient_penalty

R = torch.tensor([2.0, -1.0])  # discriminator outputs on real samples
F_ = torch.tensor([0.5, -3.0])  # ... on generated samples


def sig(x):
    return 1 / (1 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


def test_minimax_matches_log_formulas():
    L = LOSSES.get("minimax")
    d = -mean([math.log(sig(r)) for r in R.tolist()]) - mean([math.log(1 - sig(f)) for f in F_.tolist()])
    g = mean([math.log(1 - sig(f)) for f in F_.tolist()])
    assert L.d_loss(R, F_).item() == pytest.approx(d, rel=1e-6)
    assert L.g_loss(F_).item() == pytest.approx(g, rel=1e-6)


def test_nonsaturating_generator():
    L = LOSSES.get("nonsaturating")
    assert L.g_loss(F_).item() == pytest.approx(-mean([math.log(sig(f)) for f in F_.tolist()]), rel=1e-6)
    # Same D loss as minimax; G gradient does not vanish when D confidently rejects fakes.
    f = torch.tensor([-8.0], requires_grad=True)
    L.g_loss(f).backward()
    ns_grad = f.grad.abs().item()
    f2 = torch.tensor([-8.0], requires_grad=True)
    LOSSES.get("minimax").g_loss(f2).backward()
    assert ns_grad > 100 * f2.grad.abs().item()


def test_wgan_and_hinge_and_lsgan():
    w = LOSSES.get("wgan")
    assert w.d_loss(R, F_).item() == pytest.approx(mean([0.5, -3.0]) - mean([2.0, -1.0]))
    assert w.g_loss(F_).item() == pytest.approx(1.25)
    assert w.weight_clip and not w.probabilistic
    h = LOSSES.get("hinge")
    d = mean([max(0, 1 - 2.0), max(0, 1 + 1.0)]) + mean([max(0, 1 + 0.5), max(0, 1 - 3.0)])
    assert h.d_loss(R, F_).item() == pytest.approx(d)
    assert h.g_loss(F_).item() == pytest.approx(1.25)
    ls = LOSSES.get("lsgan")
    d = 0.5 * (mean([(2 - 1) ** 2, (-1 - 1) ** 2]) + mean([0.5**2, 9.0]))
    assert ls.d_loss(R, F_).item() == pytest.approx(d)
    assert ls.g_loss(F_).item() == pytest.approx(0.5 * mean([(0.5 - 1) ** 2, 16.0]))
    assert LOSSES.get("wgan-gp").gradient_penalty


def test_gradient_penalty_of_linear_critic():
    # D(x) = w . x has gradient w everywhere: GP = (||w|| - 1)^2 exactly.
    w = torch.tensor([3.0, 4.0])
    gp = gradient_penalty(lambda x: x @ w, torch.randn(8, 2), torch.randn(8, 2))
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2, rel=1e-5)


def test_clip_weights():
    m = torch.nn.Linear(4, 4)
    torch.nn.init.constant_(m.weight, 3.0)
    clip_weights(m, 0.01)
    assert m.weight.abs().max().item() == pytest.approx(0.01)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        LOSSES.get("wgan_gp")
    assert "wgan-gp" in str(e.value) and "hinge" in str(e.value)


def test_penalties_on_packed_inputs_take_one_norm_per_pack():
    """A critic that scores pairs of 2-D points by their sum: the gradient w.r.t. the pair is
    (1, 1, 1, 1), norm 2, so WGAN-GP is (2 - 1)^2 = 1 and R1 is 4 per pack; taken per sample
    (norm sqrt(2)) they would be (sqrt(2) - 1)^2 and 2."""
    import torch

    from ganpipe.losses import gradient_penalty, r1_penalty

    critic = lambda x: x.reshape(-1, 4).sum(1)  # noqa: E731
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert torch.isclose(gradient_penalty(critic, real, fake, group=2), torch.tensor(1.0))
    assert torch.isclose(gradient_penalty(critic, real, fake, group=1), torch.tensor((2**0.5 - 1) ** 2))
    r = real.clone().requires_grad_(True)
    assert torch.isclose(r1_penalty(critic(r), r, group=2), torch.tensor(4.0))
