"""The regularizer family and the attacks on image-shaped inputs (N, C, H, W).

Norms, worst cases and penalties are per example over all of an example's C·H·W coordinates, so a
batch of images and the same batch flattened to rows (N, C·H·W) must give the same numbers: a conv
network starts with ``nn.Unflatten`` and accepts both.  These tests check that equality for every
member, the closed-form worst cases on 4-D gradients, and the attacks.
"""
import numpy as np
import pytest

from minigrad import grad, nn
from minigrad import perturbations as P
from minigrad import regularizers as R
from minigrad.members import MEMBERS, Strengths, member
from minigrad.backend import as_numpy
from minigrad.tensor import Tensor

INF = float("inf")
SHAPE = (1, 6, 6)


def conv_net(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Unflatten(SHAPE),
                         nn.ConvMaxout(1, 2, 2, 3, 1, pool=3, pool_stride=2, seed=rng, dtype=np.float64),
                         nn.Flatten(), nn.Maxout(2 * 3 * 3, 4, 2, seed=rng, dtype=np.float64),
                         nn.Linear(4, 3, seed=rng, dtype=np.float64))


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    return rng.random((5,) + SHAPE), rng.integers(0, 3, 5)


# Every member by its canonical name, from the one registry (multitask's decoder reconstructs the
# image as a row of C·H·W pixels).
STRENGTHS = Strengths(eps=0.1, eps2=0.3, eps1=0.3, beta_l1=0.2, beta_l2=0.3, gp_scale=2.0, l1=0.01, l2=0.1, seed=2)
NAMES = list(MEMBERS)


@pytest.mark.parametrize("name", NAMES)
def test_every_member_is_the_same_on_images_and_on_rows(name, batch):
    x, y = batch
    model = conv_net()
    images = member(name, model, STRENGTHS, n_features=x[0].size)(model, x, y)
    rows = member(name, model, STRENGTHS, n_features=x[0].size)(model, x.reshape(len(x), -1), y)  # VAT: d₀ afresh
    assert images.item() == pytest.approx(rows.item(), rel=1e-13)
    for a, b in zip(grad(images, model.parameters()), grad(rows, model.parameters())):
        np.testing.assert_allclose(as_numpy(a.data), as_numpy(b.data), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("p", [1, 1.5, 2, INF])
def test_worst_case_and_norms_are_per_image(p):
    g = np.random.default_rng(3).standard_normal((4, 2, 3, 5))
    r = P.worst_case(g, 0.7, p)
    assert r.shape == g.shape
    flat = P.worst_case(g.reshape(4, -1), 0.7, p)
    np.testing.assert_allclose(as_numpy(r.data).reshape(4, -1), as_numpy(flat.data), rtol=1e-13)
    # each example's r* has norm ε in ℓp and attains ⟨g, r*⟩ = ε‖g‖_q (Hölder's equality case)
    np.testing.assert_allclose(as_numpy(P.per_example_norm(r, p).data), 0.7, rtol=1e-12)
    q = P.dual_exponent(p)
    np.testing.assert_allclose((g * as_numpy(r.data)).sum(axis=(1, 2, 3)), 0.7 * as_numpy(P.per_example_norm(g, q).data),
                               rtol=1e-12)


@pytest.mark.parametrize("p", [1, 2, INF])
def test_projection_and_sampling_on_images(p):
    rng = np.random.default_rng(4)
    r = P.project(rng.standard_normal((3,) + SHAPE) * 5, 0.5, p)
    assert r.shape == (3,) + SHAPE
    assert np.all(as_numpy(P.per_example_norm(Tensor(r), p).data) <= 0.5 * (1 + 1e-12))
    s = P.sample_ball((3,) + SHAPE, 0.5, p, rng=rng)
    assert s.shape == (3,) + SHAPE and np.all(as_numpy(P.per_example_norm(Tensor(s), p).data) <= 0.5 * (1 + 1e-12))


def test_attacks_on_images(batch):
    x, y = batch
    model = conv_net()
    for p in (1, 2, INF):
        adv = P.fgm(model, x, y, 0.1, p)
        assert adv.shape == x.shape
        np.testing.assert_allclose(adv.reshape(len(x), -1), P.fgm(model, x.reshape(len(x), -1), y, 0.1, p),
                                   rtol=1e-13)
    adv = P.pgd(model, x, y, 0.1, INF, steps=3, step_size=0.05, clip=(0.0, 1.0))
    assert adv.shape == x.shape and np.all(np.abs(adv - x) <= 0.1 + 1e-12) and adv.min() >= 0 and adv.max() <= 1


def test_multitask_on_a_conv_model(batch):
    x, y = batch
    model = conv_net()
    term = R.Multitask.for_model(model, 0.5)
    assert np.isfinite(term(model, x, y).item())


def test_a_conv_model_sizes_its_budgets_by_its_input_not_its_dense_layer():
    # ε₂ = ε·√D/2 with D = 28·28 = 784 pixels (not the 32·7·7 inputs of the dense Maxout), and the
    # multitask decoder reconstructs all 784 of them
    from minigrad import nn
    from minigrad.members import Strengths, member
    model = nn.conv_maxout("small", seed=0)
    assert model.n_inputs == 784
    assert member("adv-p2", model, Strengths(eps=0.1)).eps == pytest.approx(0.1 * 28 / 2)
    assert member("adv-p1", model, Strengths(eps=0.1)).eps == pytest.approx(0.1 * 28)
