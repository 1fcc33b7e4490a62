"""Optimisers against hand-computed updates, schedules, the max-norm constraint, and state dicts."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

G1 = np.array([[0.5, -1.0], [2.0, 0.25]])
G2 = np.array([[-0.5, 0.5], [1.0, -2.0]])
P0 = np.array([[1.0, 2.0], [-1.0, 0.5]])


def _param(value=P0, dtype=np.float64, device="cpu"):
    return nn.Parameter(mg.to_device(np.array(value, dtype=dtype), device))


def _grad(g, dtype=np.float64, device="cpu"):
    return mg.Tensor(mg.to_device(np.array(g, dtype=dtype), device))


# --- hand-computed steps ----------------------------------------------------------------------------
def test_plain_sgd_step():
    p = _param()
    optim.SGD([p], lr=0.1).step([_grad(G1)])
    np.testing.assert_allclose(p.numpy(), P0 - 0.1 * G1, rtol=0, atol=1e-15)


def test_sgd_momentum_two_steps(device):
    p = _param(device=device)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step([_grad(G1, device=device)])
    v1 = -0.1 * G1                        # v ← μv − ηg with v = 0
    np.testing.assert_allclose(p.numpy(), P0 + v1, atol=1e-15)
    opt.step([_grad(G2, device=device)])
    v2 = 0.9 * v1 - 0.1 * G2
    np.testing.assert_allclose(p.numpy(), P0 + v1 + v2, atol=1e-15)
    assert p.device == device and opt.state["velocity"][0].__class__ is p.data.__class__


def test_adam_two_steps_with_bias_correction(device):
    p = _param(device=device)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    m = v = np.zeros_like(P0)
    expected = P0.copy()
    for t, g in enumerate((G1, G2), start=1):
        opt.step([_grad(g, device=device)])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12, atol=1e-15)
    # First step of Adam moves every coordinate by about lr: m̂/√v̂ = sign(g).
    assert opt.steps == 2


def test_updates_keep_float32_and_create_no_float64_state():
    p = _param(dtype=np.float32)
    for opt in (optim.SGD([p], lr=0.1, momentum=optim.LinearRamp(0.5, 0.7, 3, per="step"), max_col_norm=1.0),
                optim.Adam([p], lr=optim.ExponentialDecay(0.01, 0.5, per="step"))):
        for _ in range(3):
            opt.step([_grad(G1, dtype=np.float32)])
        assert p.dtype == np.float32
        assert all(buf.dtype == np.float32 for bufs in opt.state.values() for buf in bufs.values())


def test_step_uses_p_grad_by_default_and_skips_missing_gradients():
    p, q = _param(), _param([1.0, 2.0])
    opt = optim.SGD([p, q], lr=0.5)
    p.grad = _grad(G1)
    opt.step()
    np.testing.assert_allclose(p.numpy(), P0 - 0.5 * G1)
    np.testing.assert_array_equal(q.numpy(), [1.0, 2.0])  # q.grad is None: untouched
    opt.zero_grad()
    assert p.grad is None


def test_step_rejects_mismatched_gradients():
    opt = optim.SGD([_param()], lr=0.1)
    with pytest.raises(ValueError, match="2 gradients for 1 parameters"):
        opt.step([_grad(G1), _grad(G1)])
    with pytest.raises(ValueError, match=r"gradient 0 is float32\[2, 2\], parameter is float64\[2, 2\]"):
        opt.step([_grad(G1, dtype=np.float32)])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)


# --- schedules ----------------------------------------------------------------------------------------
def test_exponential_decay_and_linear_ramp_values():
    decay = optim.ExponentialDecay(0.1, 0.5, minimum=0.02)
    assert [decay(t) for t in range(4)] == [0.1, 0.05, 0.025, 0.02]
    ramp = optim.LinearRamp(0.5, 0.7, length=4, delay=1)
    assert [round(ramp(t), 12) for t in range(7)] == [0.5, 0.5, 0.55, 0.6, 0.65, 0.7, 0.7]
    linear_lr = optim.LinearRamp(0.1, 0.0, length=10, per="step")
    assert linear_lr(5) == pytest.approx(0.05) and linear_lr(50) == 0.0
    with pytest.raises(ValueError, match=r"factor must be a number in \(0, 1\]"):
        optim.ExponentialDecay(0.1, 1.5)
    with pytest.raises(ValueError, match="per must be 'step' or 'epoch', got 'batch'"):
        optim.LinearRamp(0, 1, 3, per="batch")


def test_momentum_ramp_follows_the_epoch_counter():
    """The Maxout recipe: momentum 0.5 → 0.7 linearly over N epochs, read at each step."""
    p = _param(np.zeros((1, 1)))
    opt = optim.SGD([p], lr=1.0, momentum=optim.LinearRamp(0.5, 0.7, length=2))
    g = _grad([[1.0]])
    opt.step([g])                       # epoch 0: μ = 0.5, v = −1
    opt.epoch = 1
    opt.step([g])                       # epoch 1: μ = 0.6, v = 0.6·(−1) − 1 = −1.6
    opt.epoch = 2
    opt.step([g])                       # epoch 2: μ = 0.7, v = 0.7·(−1.6) − 1 = −2.12
    np.testing.assert_allclose(p.numpy(), [[-1 - 1.6 - 2.12]])


def test_learning_rate_schedule_per_step():
    p = _param(np.zeros((1, 1)))
    opt = optim.SGD([p], lr=optim.ExponentialDecay(1.0, 0.5, per="step"))
    for _ in range(3):
        opt.step([_grad([[1.0]])])      # steps of 1, 0.5, 0.25
    np.testing.assert_allclose(p.numpy(), [[-1.75]])


# --- the max column-norm constraint ---------------------------------------------------------------------
def test_max_norm_bounds_every_column_and_leaves_short_ones_untouched(device):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 12)).astype(np.float32)
    w[:, ::3] *= 0.01                                        # some columns well inside the bound
    w[:, 1] = 0                                              # and a zero column: no division by 0
    before, c = w.copy(), optim.MAXOUT_MAX_COL_NORM
    short = np.linalg.norm(before, axis=0) <= c
    assert short.any() and not short.all()
    out = optim.max_norm_(mg.to_device(w, device), c)
    after = mg.as_numpy(out)
    norms = np.linalg.norm(after.astype(np.float64), axis=0)
    assert (norms <= c * (1 + 1e-6)).all()
    np.testing.assert_allclose(norms[~short], c, rtol=1e-6)  # long columns land exactly on the bound
    np.testing.assert_array_equal(after[:, short], before[:, short])  # short ones: bit for bit
    # Direction is kept: the long columns are positive multiples of what they were.
    long_before, long_after = before[:, ~short], after[:, ~short]
    cos = (long_after * long_before).sum(0) / (norms[~short] * np.linalg.norm(long_before, axis=0))
    np.testing.assert_allclose(cos, 1, rtol=1e-6)


def test_optimizer_applies_max_norm_to_weight_matrices_only():
    w, b = _param(np.full((4, 3), 5.0)), _param(np.full(3, 5.0))
    optim.SGD([w, b], lr=0.1, max_col_norm=1.0).step([_grad(np.zeros((4, 3))), _grad(np.zeros(3))])
    np.testing.assert_allclose(np.linalg.norm(w.numpy(), axis=0), 1.0)
    np.testing.assert_array_equal(b.numpy(), 5.0)            # a bias is not a column of weights


def test_max_norm_rejects_bad_input():
    with pytest.raises(ValueError, match=r"expected a weight matrix \(in, out\), got shape \(3,\)"):
        optim.max_norm_(np.ones(3), 1.0)
    with pytest.raises(ValueError, match=r"max_col_norm \(None for no bound\) must be a finite number > 0, got -1"):
        optim.SGD([_param()], lr=0.1, max_col_norm=-1)
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0, got inf"):  # inf/inf would be NaN
        optim.max_norm_(np.ones((2, 2)), np.inf)


# --- state dicts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01)])
def test_state_dict_round_trip_continues_bit_exactly(make, device):
    grads = [_grad(G1, np.float32, device), _grad(G2, np.float32, device)]
    p = _param(dtype=np.float32, device=device)
    opt = make([p])
    opt.step([grads[0]])
    opt.epoch = 3
    state = opt.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    q = _param(p.numpy(), np.float32, device)
    clone = make([q]).load_state_dict(state)
    assert clone.steps == 1 and clone.epoch == 3
    opt.step([grads[1]])
    clone.step([grads[1]])
    np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert q.device == device


def test_load_state_dict_refuses_a_state_that_does_not_fit():
    p = _param()
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    sgd.step([_grad(G1)])
    with pytest.raises(ValueError, match=r"unexpected entry 'velocity.0'; Adam keeps buffers \['m', 'v'\]"):
        optim.Adam([p]).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match=r"velocity.0 is float64\[2, 2\], its parameter is float64\[3\]"):
        optim.SGD([_param([1.0, 2.0, 3.0])], lr=0.1).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="no 'steps'/'epoch' counters"):
        sgd.load_state_dict({})


def test_config_is_json_ready():
    import json
    opt = optim.SGD([_param()], lr=optim.ExponentialDecay(0.1, 0.99), momentum=optim.LinearRamp(0.5, 0.7, 10),
                    max_col_norm=1.9365)
    config = json.loads(json.dumps(opt.config()))
    assert config["type"] == "SGD" and config["max_col_norm"] == 1.9365
    assert config["momentum"] == {"schedule": "LinearRamp", "start": 0.5, "end": 0.7, "length": 10,
                                  "delay": 0, "per": "epoch"}
    assert math.isclose(optim.Adam([_param()], lr=0.002).config()["lr"], 0.002)
