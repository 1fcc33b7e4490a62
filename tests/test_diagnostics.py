"""fit's optional diagnostics (issue 24 item 3): the signals that see a collapse coming, recorded per epoch
beside the loss, on a fixed probe, without touching the training itself."""
import json

import numpy as np
import pytest

from minigrad import datasets, nn, optim, train
from minigrad.diagnostics import SIGNALS, Diagnostics
from minigrad.errors import InvalidArgument

DATA = datasets.synthetic(n=96, n_features=6, n_classes=3, seed=0)


def _model(seed=0, dropout=0.0):
    return nn.maxout_mlp(6, (8,), pieces=2, n_classes=3, hidden_dropout=dropout, seed=seed)


def _fit(model, epochs=2, **kw):
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    return train.fit(model, train.cross_entropy_objective, opt, DATA, epochs=epochs, batch_size=32, progress=False,
                     seed=3, **kw)


def _probe():
    return DATA.x[:40], DATA.y[:40]


def test_fit_records_every_signal_per_epoch_as_plain_json():
    history = _fit(_model(), diagnostics=Diagnostics(*_probe(), eps=0.1))
    for record in history:
        d = record["diagnostics"]
        assert set(d) == set(SIGNALS) and all(isinstance(v, float) and np.isfinite(v) for v in d.values())
        assert -1 <= d["cosine"] <= 1 and d["linearity"] >= 0 and d["curvature"] >= -1e-6
        assert 0 <= d["fgsm_error"] <= 1 and 0 <= d["pgd_error"] <= 1
        assert d["pgd_error"] >= d["fgsm_error"] - 0.1  # PGD is the stronger attack (up to its random start)
    assert json.loads(json.dumps(history)) == history
    assert "diagnostics" not in _fit(_model())[0]  # optional: absent unless asked for


def test_diagnostics_do_not_change_training_and_run_in_eval_mode():
    seen = []

    def spy(model):
        seen.append([m.training for m in model.modules()])
        return Diagnostics(*_probe(), eps=0.1)(model)
    plain, watched = _model(dropout=0.3), _model(dropout=0.3)
    _fit(plain)
    _fit(watched, diagnostics=spy)
    for (name, a), (_, b) in zip(plain.named_parameters(), watched.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)  # bit for bit: no draw, no update
    assert len(seen) == 2 and not any(any(modes) for modes in seen)


def test_the_same_model_gives_the_same_signals():
    model = _model()
    _fit(model, epochs=1)
    diag = Diagnostics(*_probe(), eps=0.1, signals=("cosine", "linearity", "pgd_error"))
    first, second = diag(model), diag(model)
    assert first == second and set(first) == {"cosine", "linearity", "pgd_error"}


def test_diagnostics_run_on_the_strict_device():
    model = _model()
    model.to("strict")
    values = Diagnostics(*_probe(), eps=0.1, power_iterations=2)(model)
    assert set(values) == set(SIGNALS)


@pytest.mark.parametrize("make, error, match", [
    (lambda: _fit(_model(), diagnostics=3), InvalidArgument, "diagnostics must be a callable"),
    (lambda: Diagnostics(*_probe(), eps=0.1, signals=("loss",)), ValueError, "signals must be some of"),
    (lambda: Diagnostics(*_probe(), eps=0), ValueError, "eps"),
    (lambda: Diagnostics(DATA.x[:0], DATA.y[:0], eps=0.1), ValueError, "non-empty"),
    (lambda: Diagnostics(*_probe(), eps=0.1, pgd_steps=0), ValueError, "pgd_steps"),
])
def test_bad_arguments_are_refused_before_any_work(make, error, match):
    with pytest.raises(error, match=match):
        make()
