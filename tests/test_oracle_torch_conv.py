"""PyTorch as the oracle for a small convolutional Maxout network, every member with a counterpart.

The network, twice: Unflatten(1, 8, 8) → ConvMaxout(2 channels × 2 pieces, kernel 3, pad 1, pool 3
stride 2 cover-all: 8 → 4, the last window half outside) → Flatten → Maxout(4 × 2) → Linear(3).  In PyTorch: ``conv2d`` with the same
(out, in, kh, kw) weight, the channel Maxout as ``view(N, pieces, channels, H, W).max(1)`` (pieces-major),
``max_pool2d(..., ceil_mode=True)``, then the dense layers of tests/test_oracle_torch.py.  The members are
that file's formulas (``CASES``), applied to the same network on flattened rows, so per-example norms run
over C·H·W; torch differentiates them twice, through its own max_pool2d double backward.  Parameter
gradients must agree to 1e-10 relative in float64.  Random inputs: no ties in the Maxout pieces or the
pooling windows (probability zero).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402
from test_oracle_torch import CASES, TorchMaxout, assert_same, minigrad_grads, torch_linear  # noqa: E402

from minigrad import nn  # noqa: E402
from minigrad.backend import as_numpy  # noqa: E402

SHAPE, CHANNELS, PIECES, BATCH = (1, 8, 8), 2, 2, 6


class TorchConvMaxout(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.from_numpy(as_numpy(layer.weight.data).copy()))
        self.bias = torch.nn.Parameter(torch.from_numpy(as_numpy(layer.bias.data).copy()))
        self.layer = layer

    def forward(self, x):
        lay = self.layer
        z = TF.conv2d(x.view(len(x), *SHAPE), self.weight, self.bias, stride=lay.stride,
                      padding=(lay.padding[0], lay.padding[2]))
        h = z.view(len(x), lay.pieces, lay.channels, *z.shape[2:]).max(dim=1).values
        return TF.max_pool2d(h, lay.pool.kernel, lay.pool.stride, ceil_mode=True).flatten(1)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    conv = nn.ConvMaxout(1, CHANNELS, PIECES, 3, 1, pool=3, pool_stride=2, seed=rng, dtype=np.float64)
    dense = nn.Maxout(CHANNELS * 4 * 4, 4, 2, seed=rng, dtype=np.float64)
    out = nn.Linear(4, 3, seed=rng, dtype=np.float64)
    conv.bias.data = rng.standard_normal(conv.bias.shape) * 0.1
    model = nn.Sequential(nn.Unflatten(SHAPE), conv, nn.Flatten(), dense, out)
    net = torch.nn.Sequential(TorchConvMaxout(conv), TorchMaxout(torch_linear(dense), 4, 2), torch_linear(out))
    x, y = rng.random((BATCH, 64)), rng.integers(0, 3, BATCH)
    return model, net, x, y, torch.from_numpy(x), torch.from_numpy(y)


def torch_grads(loss, net):
    params = [net[0].weight, net[0].bias, net[1].linear.weight, net[1].linear.bias, net[2].weight, net[2].bias]
    return [g.T.numpy() if g.ndim == 2 else g.numpy() for g in torch.autograd.grad(loss, params)]


def test_forward_matches_pytorch(problem):
    model, net, x, _, tx, _ = problem
    np.testing.assert_allclose(model(x).numpy(), net(tx).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("key", CASES)
def test_conv_parameter_gradient_matches_pytorch(key, problem):
    model, net, x, y, tx, ty = problem
    make, torch_loss = CASES[key]
    mine = make()(model, x, y)
    theirs = torch_loss(net, tx, ty)
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert_same(minigrad_grads(mine, model.parameters()), torch_grads(theirs, net))
