"""IBM's Adversarial Robustness Toolbox (ART 1.20.1) as an independent oracle for the attack suite.

A Maxout network is trained on the 8×8 digits with minigrad (FGSM adversarial training, the p = ∞
member), its weights loaded into the equivalent PyTorch module (the layout of test_oracle_torch.py),
and both libraries attack the same 449 test digits at the same budget:

- APGD-CE, ℓ∞ ε = 0.1 and ℓ2 ε = 0.8, 50 iterations, one start, first step 2ε (Croce & Hein's η⁰;
  ART's ``eps_step``): the errors must agree within ``tolerance``;
- Square, ℓ∞ ε = 0.1, 1000 queries, one restart: minigrad's error must be at least ART's less the
  tolerance.  One-sided on purpose: ART's Square draws one ±ε sign per channel for the whole batch
  at each query (AutoAttack's code does the same), minigrad's Square one per example, as in the
  paper's Algorithm 1, so minigrad's search is the stronger (about 8 points more on these digits);
- ART's AutoAttack against minigrad's strong suite: minigrad's worst case must be at least
  AutoAttack's error less 1 point.  ART's default AutoAttack (APGD-CE and APGD-DLR with 5 restarts of
  100 steps, DeepFool, Square with 5 restarts of 5000 queries) took 200 s on these 449 digits on a
  shared 2-core machine, so the test gives it its own attack list: APGD-CE and APGD-DLR of 100 steps,
  Square of 1000 queries (benchmarks/attack_cost.py times the default one).

The tolerance: both libraries attack the same n examples with their own random draws; the per-example
outcome is a coin with the attack's success probability, so each error is a binomial rate with standard
error SE = √(e(1 − e)/n).  Agreement is required within 2 SE (4.1 points at e = 0.245, n = 449).

Install the oracle with ``pip install torch==2.13.0 adversarial-robustness-toolbox==1.20.1 multiprocess``
(the ``oracle`` extra; ART's AutoAttack imports ``multiprocess``); without them these tests skip.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("art")
pytest.importorskip("multiprocess")
pytest.importorskip("sklearn")
from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, SquareAttack  # noqa: E402
from art.estimators.classification import PyTorchClassifier  # noqa: E402
from test_oracle_torch import TorchMaxout, torch_linear  # noqa: E402

from minigrad import attacks as A  # noqa: E402
from minigrad import datasets, nn, optim, train  # noqa: E402
from minigrad import regularizers as R  # noqa: E402
from minigrad import robust as RB  # noqa: E402

INF = math.inf
EPS = {INF: 0.1, 2: 0.8}


def tolerance(e, n):
    """2 binomial standard errors of an error rate e measured on n examples."""
    return 2 * math.sqrt(max(e * (1 - e), 1 / n) / n)


def twin(model, image_shape):
    """The float32 PyTorch module computing the same logits as a minigrad ``maxout_mlp``, taking images."""
    layers = [torch.nn.Flatten()]
    for layer in model.layers if hasattr(model, "layers") else list(model):
        lin = torch_linear(layer).float()
        layers.append(TorchMaxout(lin, layer.units, layer.pieces) if isinstance(layer, nn.Maxout) else lin)
    return torch.nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def setup():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ART's Square is a loop of small forward passes: threads only contend
    torch.manual_seed(0)
    np.random.seed(0)  # ART draws from NumPy's global generator
    train_set, test_set = datasets.load("digits")
    model = nn.maxout_mlp(64, (64,), 3, 10, seed=0)
    train.fit(model, R.AdversarialTraining(0.1), optim.SGD(model.parameters(), lr=0.1, momentum=0.5), train_set,
              epochs=10, batch_size=32, progress=False)
    model.eval()
    shape = (1, *test_set.image_shape)
    classifier = PyTorchClassifier(twin(model, shape), loss=torch.nn.CrossEntropyLoss(), input_shape=shape,
                                   nb_classes=10, clip_values=(0.0, 1.0))
    yield model, classifier, test_set.x, test_set.y, shape
    torch.set_num_threads(threads)


def error(model, x, y, x_adv):
    return float((A.logits(model, x_adv.reshape(x.shape).astype(x.dtype)).argmax(1) != y).mean())


def test_the_twin_computes_the_same_logits(setup):
    model, classifier, x, y, shape = setup
    np.testing.assert_allclose(classifier.predict(x.reshape(-1, *shape)), A.logits(model, x), atol=1e-4)


@pytest.mark.parametrize("p", [INF, 2], ids=["linf", "l2"])
def test_apgd_ce_agrees_with_art(setup, p):
    model, classifier, x, y, shape = setup
    eps = EPS[p]
    art = AutoProjectedGradientDescent(classifier, norm=p, eps=eps, eps_step=2 * eps, max_iter=50,
                                       nb_random_init=1, batch_size=500, loss_type="cross_entropy", verbose=False)
    theirs = error(model, x, y, art.generate(x.reshape(-1, *shape), y))
    mine = error(model, x, y, A.apgd(model, x, y, eps, p, steps=50, loss="ce", seed=0))
    assert abs(mine - theirs) <= tolerance(theirs, len(x)), (mine, theirs, tolerance(theirs, len(x)))


def test_square_at_least_as_strong_as_arts(setup):
    model, classifier, x, y, shape = setup
    art = SquareAttack(classifier, norm=INF, eps=EPS[INF], max_iter=1000, nb_restarts=1, batch_size=500,
                       verbose=False)
    theirs = error(model, x, y, art.generate(x.reshape(-1, *shape), y))
    mine = error(model, x, y, A.square(model, x, y, EPS[INF], INF, 1000, shape, seed=0))
    assert mine >= theirs - tolerance(theirs, len(x)), (mine, theirs)


def test_strong_suite_at_least_autoattack(setup):
    model, classifier, x, y, shape = setup
    eps = EPS[INF]
    apgd = [AutoProjectedGradientDescent(classifier, norm=INF, eps=eps, eps_step=2 * eps, max_iter=100,
                                         nb_random_init=1, batch_size=500, loss_type=loss, verbose=False)
            for loss in ("cross_entropy", "difference_logits_ratio")]
    square = SquareAttack(classifier, norm=INF, eps=eps, max_iter=1000, nb_restarts=1, batch_size=500, verbose=False)
    auto = AutoAttack(classifier, norm=INF, eps=eps, eps_step=2 * eps, attacks=apgd + [square], batch_size=500)
    theirs = error(model, x, y, auto.generate(x.reshape(-1, *shape), y))
    mine = RB.robust_error(model, x, y, eps, INF, "strong", image_shape=shape[1:])
    assert mine.error >= theirs - 0.01, (mine.error, mine.errors, theirs)
