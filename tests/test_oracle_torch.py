"""PyTorch as an independent oracle for the regularizer family.

The same float64 Maxout network is built in PyTorch, and every member with a PyTorch
counterpart is written here again *from its formula* (PAPERS.md §1–§3), with
``torch.autograd.grad(..., create_graph=True)`` for the double-backprop members; the
parameter gradients must agree with minigrad's to ~1e-10 relative.

Layout (see nn.py): minigrad stores a weight as (in, out) so a layer is x @ W + b, and a
Maxout layer's columns are pieces-major (piece k of unit j is column k·units + j); so the
torch Linear weight is Wᵀ and the Maxout is ``linear(x).view(B, pieces, units).max(dim=1)``.
Random inputs and weights: no Maxout ties, no ties in max|gᵢ| for p = 1 (where torch's
argmax would pick the first index and minigrad split ε evenly) and no zero coordinates of g.

Install the oracle with ``pip install torch==2.13.0`` (the ``oracle`` extra); without torch
these tests are skipped.
"""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad import regularizers as R  # noqa: E402
from minigrad.backend import as_numpy  # noqa: E402

INF = float("inf")
UNITS, PIECES, IN, CLASSES, BATCH = 5, 3, 6, 4, 7


# --- the network, twice ---------------------------------------------------------------------
class TorchMaxout(torch.nn.Module):
    def __init__(self, linear, units, pieces):
        super().__init__()
        self.linear, self.units, self.pieces = linear, units, pieces

    def forward(self, x):
        return self.linear(x).view(len(x), self.pieces, self.units).max(dim=1).values


def torch_linear(layer):
    """A torch Linear holding minigrad's (in, out) weight transposed, in float64."""
    lin = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(as_numpy(layer.weight.data).T.copy()))
        lin.bias.copy_(torch.from_numpy(as_numpy(layer.bias.data).copy()))
    return lin


@pytest.fixture
def problem():
    model = nn.maxout_mlp(IN, (UNITS,), PIECES, CLASSES, dtype=np.float64, seed=0)
    hidden, out = model[0], model[1]
    net = torch.nn.Sequential(TorchMaxout(torch_linear(hidden), UNITS, PIECES), torch_linear(out))
    rng = np.random.default_rng(7)
    x, y = rng.random((BATCH, IN)), rng.integers(0, CLASSES, BATCH)
    return model, net, x, y, torch.from_numpy(x), torch.from_numpy(y)


def torch_grads(loss, modules):
    """Parameter gradients in minigrad's layout (weights back to (in, out))."""
    params = [p for m in modules for p in (m.weight, m.bias)]
    grads = torch.autograd.grad(loss, params)
    return [g.T.numpy() if g.ndim == 2 else g.numpy() for g in grads]


def minigrad_grads(loss, params):
    return [as_numpy(g.data) for g in mg.grad(loss, params)]


def assert_same(mine, theirs, rtol=1e-10):
    for i, (a, b) in enumerate(zip(mine, theirs)):
        err = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert err < rtol, f"parameter {i}: relative error {err:.3g}"


def linears(net):
    return [net[0].linear, net[1]]


# --- the members, written from their formulas -------------------------------------------------
def ce(net, x, y):
    return TF.cross_entropy(net(x), y)  # mean over the batch


def input_grad(net, x, y, create_graph=False):
    """Per-example ∇ₓLᵢ: the gradient of the *summed* loss (each row sees only its own loss)."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(TF.cross_entropy(net(x), y, reduction="sum"), x, create_graph=create_graph)
    return g


def worst_case(g, eps, p):
    """argmax_{‖r‖ₚ ≤ ε} gᵀr, row by row (Hölder's equality case)."""
    if p == INF:
        return eps * torch.sign(g)
    if p == 1:
        k = g.abs().argmax(dim=1)
        return eps * torch.sign(g) * TF.one_hot(k, g.shape[1]).to(g.dtype)
    q = p / (p - 1)
    return eps * torch.sign(g) * g.abs() ** (q - 1) / torch.linalg.vector_norm(g, q, dim=1, keepdim=True) ** (q - 1)


def dual(p):
    return 1.0 if p == INF else INF if p == 1 else p / (p - 1)


def adversarial(net, x, y, eps, p, a):
    r = worst_case(input_grad(net, x, y), eps, p).detach()
    return a * ce(net, x, y) + (1 - a) * ce(net, x + r, y)


def gradient_penalty(net, x, y, eps, p):
    g = input_grad(net, x, y, create_graph=True)
    return ce(net, x, y) + eps * torch.linalg.vector_norm(g, dual(p), dim=1).mean()


def datagrad_exact(net, x, y, alpha, beta, norm):
    g = input_grad(net, x, y, create_graph=True)
    penalty = g.abs().sum(dim=1) if norm == "l1" else (g ** 2).sum(dim=1)
    return alpha * ce(net, x, y) + beta * penalty.mean()


def datagrad_fd(net, x, y, alpha, beta, norm, step):
    g = input_grad(net, x, y)
    r = torch.sign(g) if norm == "l1" else 2 * g  # ∇_J of ‖J‖₁, ‖J‖₂²
    return (alpha - beta / step) * ce(net, x, y) + (beta / step) * ce(net, x + step * r.detach(), y)


def double_backprop(net, x, y, lam):
    g = input_grad(net, x, y, create_graph=True)
    return ce(net, x, y) + lam * (g ** 2).sum(dim=1).mean()


def jacobian_penalty(net, x, y, lam):
    """Varga et al.'s JacReg: λ·mean ‖∂logits/∂x‖_F², one autograd.grad per class."""
    x = x.detach().clone().requires_grad_(True)
    logits = net(x)
    rows = [torch.autograd.grad(logits[:, k].sum(), x, create_graph=True)[0] for k in range(logits.shape[1])]
    return TF.cross_entropy(logits, y) + lam * sum((j ** 2).sum(dim=1) for j in rows).mean()


def spectral_penalty(net, x, y, lam, r):
    """SpectReg at the draw r: λ·mean ‖∇ₓ(rᵢᵀf(xᵢ))‖²."""
    x = x.detach().clone().requires_grad_(True)
    logits = net(x)
    (jr,) = torch.autograd.grad((logits * r).sum(), x, create_graph=True)
    return TF.cross_entropy(logits, y) + lam * (jr ** 2).sum(dim=1).mean()


def wasserstein_penalty(net, x, y, eps, p, ground=2.0):
    """Gao et al.: L + ε·(mean ‖gᵢ‖_*^q)^(1/q), ‖·‖_* the dual of the ground norm."""
    g = input_grad(net, x, y, create_graph=True)
    a = torch.linalg.vector_norm(g, dual(ground), dim=1)
    q = dual(p)
    agg = a.max() if q == INF else (a ** q).mean() ** (1 / q)
    return ce(net, x, y) + eps * agg


# --- comparisons ----------------------------------------------------------------------------------
CASES = {
    "plain": (lambda: R.CrossEntropy(), lambda n, x, y: ce(n, x, y)),
    "adv-p1": (lambda: R.AdversarialTraining(0.3, 1), lambda n, x, y: adversarial(n, x, y, 0.3, 1, 0.5)),
    "adv-p2": (lambda: R.AdversarialTraining(0.3, 2, alpha=0.2),
               lambda n, x, y: adversarial(n, x, y, 0.3, 2, 0.2)),
    "adv-pinf": (lambda: R.AdversarialTraining(0.1, INF), lambda n, x, y: adversarial(n, x, y, 0.1, INF, 0.5)),
    "adv-p1.5": (lambda: R.AdversarialTraining(0.3, 1.5, alpha=0.0),
                 lambda n, x, y: adversarial(n, x, y, 0.3, 1.5, 0.0)),
    "gp-q1": (lambda: R.GradientPenalty(0.2, INF), lambda n, x, y: gradient_penalty(n, x, y, 0.2, INF)),
    "gp-q2": (lambda: R.GradientPenalty(0.2, 2), lambda n, x, y: gradient_penalty(n, x, y, 0.2, 2)),
    "gp-qinf": (lambda: R.GradientPenalty(0.2, 1), lambda n, x, y: gradient_penalty(n, x, y, 0.2, 1)),
    "gp-q3": (lambda: R.GradientPenalty(0.2, 1.5), lambda n, x, y: gradient_penalty(n, x, y, 0.2, 1.5)),
    "double-backprop": (lambda: R.DoubleBackprop(0.3), lambda n, x, y: double_backprop(n, x, y, 0.3)),
    "datagrad-l1": (lambda: R.DataGrad(0.8, 0.2, "l1"), lambda n, x, y: datagrad_exact(n, x, y, 0.8, 0.2, "l1")),
    "datagrad-l2": (lambda: R.DataGrad(0.8, 0.2, "l2"), lambda n, x, y: datagrad_exact(n, x, y, 0.8, 0.2, "l2")),
    "datagrad-l1-fd": (lambda: R.DataGradFD(1.0, 0.2, "l1", phi=0.05),
                       lambda n, x, y: datagrad_fd(n, x, y, 1.0, 0.2, "l1", 0.05)),
    "datagrad-l2-fd": (lambda: R.DataGradFD(1.0, 0.2, "l2", phi=0.05),
                       lambda n, x, y: datagrad_fd(n, x, y, 1.0, 0.2, "l2", 0.05)),
    "jacreg": (lambda: R.JacobianPenalty(0.3), lambda n, x, y: jacobian_penalty(n, x, y, 0.3)),
    "wasserstein-p1": (lambda: R.WassersteinPenalty(0.2, 1), lambda n, x, y: wasserstein_penalty(n, x, y, 0.2, 1)),
    "wasserstein-p2": (lambda: R.WassersteinPenalty(0.2, 2), lambda n, x, y: wasserstein_penalty(n, x, y, 0.2, 2)),
    "wasserstein-p3-l1": (lambda: R.WassersteinPenalty(0.2, 3, ground=1),
                          lambda n, x, y: wasserstein_penalty(n, x, y, 0.2, 3, ground=1)),
    "wasserstein-p1.5-linf": (lambda: R.WassersteinPenalty(0.2, 1.5, ground=INF),
                              lambda n, x, y: wasserstein_penalty(n, x, y, 0.2, 1.5, ground=INF)),
}


@pytest.mark.parametrize("key", CASES)
def test_parameter_gradient_matches_pytorch(key, problem):
    model, net, x, y, tx, ty = problem
    make, torch_loss = CASES[key]
    mine = make()(model, x, y)
    theirs = torch_loss(net, tx, ty)
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert_same(minigrad_grads(mine, model.parameters()), torch_grads(theirs, linears(net)))


def test_multitask_matches_pytorch(problem):
    # γ · mean squared error of a linear decoder from the first hidden layer, encoder and
    # decoder both trained; torch's mse_loss averages over examples and coordinates too.
    model, net, x, y, tx, ty = problem
    term = R.Multitask.for_model(model, 0.7, seed=1)
    decoder = torch_linear(term.decoder)
    objective = R.CrossEntropy() + term
    mine = objective(model, x, y)
    theirs = ce(net, tx, ty) + 0.7 * TF.mse_loss(decoder(net[0](tx)), tx)
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert_same(minigrad_grads(mine, model.parameters() + objective.parameters()),
                torch_grads(theirs, linears(net) + [decoder]))


def test_virtual_adversarial_matches_pytorch(problem):
    # Same start d₀: the first draw of the objective's own generator.
    # ξ = 1e-3 (not 1e-6) keeps float64 roundoff in the power iteration far below 1e-10.
    model, net, x, y, tx, ty = problem
    eps, xi, iterations, seed = 0.5, 1e-3, 2, 3
    vat = R.VirtualAdversarial(eps, xi, iterations, seed)
    start = copy.deepcopy(vat.rng)  # the generator d₀ will be drawn from, before it is used
    mine = (R.CrossEntropy() + vat)(model, x, y)

    log_p = TF.log_softmax(net(tx), dim=1).detach()
    d = torch.from_numpy(start.standard_normal(x.shape))
    for _ in range(iterations):
        probe = (xi * d / d.norm(dim=1, keepdim=True)).requires_grad_(True)
        kl = TF.kl_div(TF.log_softmax(net(tx + probe), dim=1), log_p, reduction="sum", log_target=True)
        (d,) = torch.autograd.grad(kl, probe)
    r = (eps * d / d.norm(dim=1, keepdim=True)).detach()
    vat = TF.kl_div(TF.log_softmax(net(tx + r), dim=1), log_p, reduction="batchmean", log_target=True)
    theirs = ce(net, tx, ty) + vat
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-10)
    assert_same(minigrad_grads(mine, model.parameters()), torch_grads(theirs, linears(net)))


def test_spectral_penalty_matches_pytorch(problem):
    # Same draw r: the first draw of the objective's own generator.
    model, net, x, y, tx, ty = problem
    spect = R.SpectralPenalty(0.4, seed=9)
    start = copy.deepcopy(spect.rng)
    mine = spect(model, x, y)
    r = torch.from_numpy(start.standard_normal((BATCH, CLASSES)))
    theirs = spectral_penalty(net, tx, ty, 0.4, r)
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert_same(minigrad_grads(mine, model.parameters()), torch_grads(theirs, linears(net)))


def test_weight_decay_matches_pytorch_sgd_weight_decay(problem):
    # WeightDecay(l2=λ) has gradient λW, PyTorch SGD's weight_decay=λ; biases are not decayed.
    model, net, x, y, tx, ty = problem
    mine = (R.CrossEntropy() + R.WeightDecay(l2=0.3))(model, x, y)
    theirs = ce(net, tx, ty)
    grads = torch_grads(theirs, linears(net))
    weights = [as_numpy(p.data) for n, p in model.named_parameters()]
    expected = [g + 0.3 * w if g.ndim == 2 else g for g, w in zip(grads, weights)]
    assert_same(minigrad_grads(mine, model.parameters()), expected)


@pytest.mark.parametrize("one_sided", [False, True])
def test_critic_gradient_penalty_matches_pytorch(one_sided):
    # WGAN-GP (Gulrajani et al.) and WGAN-LP (Petzka et al.) at interpolates, on a tanh critic.
    from minigrad import penalties as Q
    rng = np.random.default_rng(3)
    first, second = nn.Linear(2, 16, seed=1, dtype=np.float64), nn.Linear(16, 1, seed=2, dtype=np.float64)
    for layer in (first, second):
        layer.weight.data = layer.weight.data * 4
        layer.bias.data = rng.normal(size=layer.bias.shape)
    pts = Q.interpolates(rng.normal(size=(32, 2)), rng.normal(size=(32, 2)), rng)
    mine = mg.functional.mean(Q.critic_gradient_penalty(lambda x: second(mg.functional.tanh(first(x))), pts,
                                                        one_sided))
    t1, t2 = torch_linear(first), torch_linear(second)
    x = torch.from_numpy(pts).requires_grad_(True)
    (g,) = torch.autograd.grad(t2(torch.tanh(t1(x))).sum(), x, create_graph=True)
    excess = g.norm(dim=1) - 1
    theirs = ((excess.clamp(min=0) if one_sided else excess) ** 2).mean()
    assert 0 < mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    # The output bias does not change ∇ₓD, so the penalty does not reach it.
    theirs_grads = torch.autograd.grad(theirs, [t1.weight, t1.bias, t2.weight])
    assert_same(minigrad_grads(mine, [first.weight, first.bias, second.weight]),
                [g.T.numpy() if g.ndim == 2 else g.numpy() for g in theirs_grads])


# --- the successors (issue 24), written from their papers' formulas ---------------------------------
def per_example_ce(net, x, y):
    return TF.cross_entropy(net(x), y, reduction="none")


def trades(net, x, y, eps, beta, steps, step, rng):
    """Zhang et al.: x′ by PGD on KL(p(x) ‖ p(x′)) from x + 0.001·N(0, I); the target is not stopped."""
    log_p = TF.log_softmax(net(x), dim=1)
    delta = torch.from_numpy(rng.standard_normal(x.shape) * 0.001)
    for _ in range(steps):
        d = delta.clone().requires_grad_(True)
        kl = TF.kl_div(TF.log_softmax(net(x + d), dim=1), log_p.detach(), reduction="sum", log_target=True)
        (a,) = torch.autograd.grad(kl, d)
        delta = torch.clamp(delta + step * torch.sign(a), -eps, eps)
    kl = TF.kl_div(TF.log_softmax(net(x + delta), dim=1), log_p, reduction="batchmean", log_target=True)
    return ce(net, x, y) + beta * kl


def random_start_fgsm(net, x, y, eps, alpha, noise, project, rng):
    """Wong et al. (project=True) and de Jorge et al. (noise 2ε, no projection)."""
    eta = torch.from_numpy(rng.uniform(-noise, noise, x.shape))
    delta = eta + alpha * torch.sign(input_grad(net, x + eta, y))
    return ce(net, x + (torch.clamp(delta, -eps, eps) if project else delta), y)


def gp_fd(net, x, y, beta, h, p):
    """Finlay & Oberman: β·((L(x + hd) − L(x))/h)², d the held unit steepest-ascent direction."""
    d = worst_case(input_grad(net, x, y), 1.0, p)
    clean = per_example_ce(net, x, y)
    return clean.mean() + beta * (((per_example_ce(net, x + h * d, y) - clean) / h) ** 2).mean()


def gradalign(net, x, y, eps, lam, rng):
    """Andriushchenko & Flammarion: FGSM loss + λ(1 − cos(g(x), g(x + η))), g(x) held."""
    g1 = input_grad(net, x, y)
    eta = torch.from_numpy(rng.uniform(-eps, eps, x.shape))
    g2 = input_grad(net, x + eta, y, create_graph=True)
    return ce(net, x + eps * torch.sign(g1), y) + lam * (1 - TF.cosine_similarity(g1, g2, dim=1).mean())


def cure(net, x, y, lam, h):
    """Moosavi-Dezfooli et al.: λ‖g(x + hz) − g(x)‖², z = sign g/‖sign g‖ held, both g's differentiated."""
    g = input_grad(net, x, y, create_graph=True)
    z = torch.sign(g).detach()
    z = z / z.norm(dim=1, keepdim=True)
    diff = input_grad(net, x + h * z, y, create_graph=True) - g
    return ce(net, x, y) + lam * (diff ** 2).sum(dim=1).mean()


def llr(net, x, y, eps, lam, mu, steps, step, rng):
    """Qin et al.: λ·γ + μ·|δᵀg| at δ, the signed-gradient maximiser of the linearity error from U[−ε, ε]."""
    xl = x.detach().clone().requires_grad_(True)
    clean = per_example_ce(net, xl, y)
    (g,) = torch.autograd.grad(clean.sum(), xl, create_graph=True)
    delta = torch.from_numpy(rng.uniform(-eps, eps, x.shape))
    for _ in range(steps):
        d = delta.clone().requires_grad_(True)
        err = (per_example_ce(net, x + d, y) - clean.detach() - (d * g.detach()).sum(dim=1)).abs()
        (a,) = torch.autograd.grad(err.sum(), d)
        delta = torch.clamp(delta + step * torch.sign(a), -eps, eps)
    linear = (delta * g).sum(dim=1)
    gamma = (per_example_ce(net, x + delta, y) - clean - linear).abs()
    return clean.mean() + lam * gamma.mean() + mu * linear.abs().mean()


SUCCESSORS = {  # minigrad's member, and the formula given a copy of the member's generator (same draws)
    "trades": (lambda: R.TRADES(0.2, 3.0, steps=3, step_size=0.05, seed=1),
               lambda n, x, y, rng: trades(n, x, y, 0.2, 3.0, 3, 0.05, rng)),
    "fgsm-rs": (lambda: R.FGSMRandomStart(0.1, seed=2),
                lambda n, x, y, rng: random_start_fgsm(n, x, y, 0.1, 0.125, 0.1, True, rng)),
    "n-fgsm": (lambda: R.NFGSM(0.1, seed=3), lambda n, x, y, rng: random_start_fgsm(n, x, y, 0.1, 0.1, 0.2, False, rng)),
    "gp-fd": (lambda: R.GradientPenaltyFD(0.4, h=0.05), lambda n, x, y, rng: gp_fd(n, x, y, 0.4, 0.05, 2)),
    "gp-fd-q1": (lambda: R.GradientPenaltyFD(0.4, h=0.05, p=INF),
                 lambda n, x, y, rng: gp_fd(n, x, y, 0.4, 0.05, INF)),
    "gradalign": (lambda: R.GradAlign(0.1, 0.7, seed=4), lambda n, x, y, rng: gradalign(n, x, y, 0.1, 0.7, rng)),
    "cure": (lambda: R.CURE(0.5, h=0.3), lambda n, x, y, rng: cure(n, x, y, 0.5, 0.3)),
    "llr": (lambda: R.LocalLinearity(0.1, 2.0, 1.5, steps=3, seed=5),
            lambda n, x, y, rng: llr(n, x, y, 0.1, 2.0, 1.5, 3, 0.025, rng)),
}


@pytest.mark.parametrize("key", SUCCESSORS)
def test_successor_matches_pytorch(key, problem):
    model, net, x, y, tx, ty = problem
    make, torch_loss = SUCCESSORS[key]
    objective = make()
    start = copy.deepcopy(getattr(objective, "rng", None))  # the generator the draws will come from
    mine = objective(model, x, y)
    theirs = torch_loss(net, tx, ty, start)
    assert mine.item() == pytest.approx(theirs.item(), rel=1e-12)
    assert_same(minigrad_grads(mine, model.parameters()), torch_grads(theirs, linears(net)))
