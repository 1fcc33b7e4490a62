"""Layers: shapes, initialisation, modes, state dicts, and first/second derivatives checked
against central differences (float64 models, built with dtype=np.float64)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn

F64 = np.float64


def _x(shape, seed=0, device="cpu"):
    return mg.Tensor(mg.to_device(np.random.default_rng(seed).normal(size=shape), device), requires_grad=True)


# --- shapes, dtypes, initialisation ------------------------------------------------------------
def test_linear_shape_init_and_float32_default():
    layer = nn.Linear(6, 4, seed=0)
    assert layer.weight.shape == (6, 4) and layer.bias.shape == (4,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert np.abs(layer.weight.numpy()).max() <= 1 / np.sqrt(6) and not layer.bias.numpy().any()
    y = layer(np.ones((3, 6), np.float32))
    assert y.shape == (3, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), np.ones((3, 6)) @ layer.weight.numpy(), rtol=1e-6)


def test_maxout_is_max_over_pieces_major_columns():
    layer = nn.Maxout(5, units=3, pieces=4, seed=1, dtype=F64)
    x = np.random.default_rng(2).normal(size=(7, 5))
    z = x @ layer.weight.numpy() + layer.bias.numpy()  # column k*units + j = piece k of unit j
    expected = z.reshape(7, 4, 3).max(axis=1)
    h = layer(x)
    assert h.shape == (7, 3) and h.dtype == F64
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-12)


def test_same_seed_same_init_different_seed_different():
    a, b, c = (nn.maxout_mlp(8, (6, 5), 3, 4, seed=s) for s in (0, 0, 1))
    for (name, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=name)
        if pa.ndim == 2:
            assert not np.array_equal(pa.numpy(), pc.numpy()), name


def test_maxout_mlp_architecture_and_config_rebuild():
    model = nn.maxout_mlp(8, (6, 5), pieces=3, n_classes=4, input_dropout=0.2, hidden_dropout=0.5, seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dropout", "Maxout", "Dropout", "Maxout", "Dropout", "Linear"]
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {"1.weight": (8, 18), "1.bias": (18,), "3.weight": (6, 15), "3.bias": (15,),
                      "5.weight": (5, 4), "5.bias": (4,)}
    assert model(np.zeros((2, 8), np.float32)).shape == (2, 4)
    rebuilt = nn.build(model.config)
    assert {n: p.shape for n, p in rebuilt.named_parameters()} == shapes
    assert model.hidden_index(1) == 3
    with pytest.raises(ValueError, match="2 Maxout layers"):
        model.hidden_index(2)


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Linear(0, 3), "Linear: in_features must be an integer >= 1, got 0"),
    (lambda: nn.Maxout(3, 2, pieces=0), "Maxout: pieces must be an integer >= 1, got 0"),
    (lambda: nn.Dropout(1.0), r"Dropout: p must be a number in \[0, 1\), got 1.0"),
    (lambda: nn.build({"kind": "convnet"}), "unknown model kind 'convnet'"),
])
def test_bad_arguments_name_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_linear_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 6\), got \(2, 5\)"):
        nn.Linear(6, 3)(np.zeros((2, 5), np.float32))


# --- dropout and modes ---------------------------------------------------------------------------
def test_dropout_is_inverted_in_training_and_identity_in_eval():
    drop = nn.Dropout(0.25, seed=0)
    x = mg.Tensor(np.ones((200, 50), np.float32))
    y = drop(x).numpy()
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}  # survivors scaled by 1/(1 − p)
    assert abs((y == 0).mean() - 0.25) < 0.02 and abs(y.mean() - 1) < 0.03
    drop.eval()
    assert drop(x) is x


def test_train_eval_reach_every_submodule():
    model = nn.maxout_mlp(4, (3,), 2, 2, input_dropout=0.5, seed=0)
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # eval is deterministic
    model.train()
    assert all(m.training for m in model.modules())


# --- state dicts and devices ----------------------------------------------------------------------
def test_state_dict_round_trip_is_exact_and_a_copy():
    a, b = nn.maxout_mlp(8, (6,), 3, 4, seed=0), nn.maxout_mlp(8, (6,), 3, 4, seed=1)
    state = a.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    b.load_state_dict(state)
    state["0.weight"][...] = 0  # a copy: editing it changes neither model
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=name)
        assert pa.data is not pb.data


def test_load_state_dict_refuses_another_architecture():
    small, wide = nn.maxout_mlp(8, (6,), 3, 4), nn.maxout_mlp(8, (7,), 3, 4)
    with pytest.raises(ValueError, match=r"0.weight is float32\[8, 21\] in the state but float32\[8, 18\]"):
        small.load_state_dict(wide.state_dict())
    with pytest.raises(ValueError, match=r"missing \[.*2.weight.*\]"):
        nn.maxout_mlp(8, (6, 6), 3, 4).load_state_dict(small.state_dict())


def test_module_to_device_moves_every_parameter(device):
    model = nn.maxout_mlp(4, (3,), 2, 2, seed=0).to(device)
    assert model.device == device and all(p.device == device for p in model.parameters())
    out = model(mg.to_device(np.ones((2, 4), np.float32), device))
    assert out.device == device


# --- derivatives, in float64 ------------------------------------------------------------------------
def test_gradcheck_linear_input_weight_bias(device):
    layer = nn.Linear(4, 3, seed=0, dtype=F64).to(device)
    layer.bias.data = layer.bias.data + 0.1  # a non-zero bias, so its gradient is tested on a generic point
    assert mg.gradcheck(lambda x, w, b: layer(x), (_x((5, 4), device=device), layer.weight, layer.bias))


def test_gradcheck_and_gradgradcheck_maxout(device):
    layer = nn.Maxout(4, units=3, pieces=3, seed=0, dtype=F64).to(device)
    x = _x((5, 4), device=device)
    assert mg.gradcheck(lambda x, w, b: layer(x), (x, layer.weight, layer.bias))
    # Piecewise linear: the second derivative is 0 except through products of inputs and weights.
    assert mg.gradgradcheck(lambda x, w, b: layer(x), (x, layer.weight, layer.bias))


def test_gradcheck_dropout_in_eval_and_with_a_fixed_mask():
    drop = nn.Dropout(0.5, seed=0).eval()
    assert mg.gradcheck(drop, (_x((4, 6)),))
    drop.train()
    # In training the mask must stay fixed across the finite-difference evaluations: reseed each call.
    def fixed(x):
        drop.rng = np.random.default_rng(3)
        return drop(x)
    assert mg.gradcheck(fixed, (_x((4, 6)),))


def _net(seed=0):
    return nn.maxout_mlp(5, (4, 3), pieces=2, n_classes=3, seed=seed, dtype=F64)


def test_gradcheck_whole_network_loss_wrt_every_parameter_and_the_input():
    model = _net()
    y = np.array([0, 2, 1, 2])
    params = model.parameters()
    loss = lambda x, *ps: F.cross_entropy(model(x), y)  # noqa: E731 - ps are the model's own tensors
    assert mg.gradcheck(loss, (_x((4, 5)), *params))


def test_gradgradcheck_whole_network_input_gradient():
    # Second order through the network: what a gradient penalty differentiates.
    model = _net(seed=1)
    y = np.array([1, 0, 2])
    w_in = model.layers[0].weight
    assert mg.gradgradcheck(lambda x, w: F.cross_entropy(model(x), y, reduction="sum"), (_x((3, 5), seed=4), w_in))
