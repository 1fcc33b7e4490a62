"""Tests for minigrad.regularizers: every member's parameter gradient, end to end.

The central check: for every member, on a small float64 Maxout network, the parameter
gradient of the objective passes ``gradcheck`` against central differences of the
objective's value.  For the explicit penalties (gradient penalty, exact DataGrad, double
backprop) that is the proof that double backprop is right.

Members that hold something constant (a perturbation r, VAT's target p(·|x)) train
with a stop-gradient direction: the *value* at θ + h depends on r(θ + h), a dependence
the training direction deliberately leaves out.  So their check runs on
``objective.frozen(model, x, y)``, which computes r once at the base point and holds it,
and a separate test shows the objective's own gradient equals the frozen one there.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import datasets, nn
from minigrad import members as M
from minigrad import perturbations as P
from minigrad import regularizers as R
from minigrad.backend import as_numpy, to_device

INF = np.inf


def small_problem(seed=0):
    """maxout_mlp 6 → 5×3 → 4 in float64, a batch of 5 random inputs and labels.

    Random weights and inputs: Maxout ties, zero input-gradient coordinates and ties in
    max|gᵢ| (p = 1) have probability zero, so central differences (step 1e-6) see no kink."""
    model = nn.maxout_mlp(in_features=6, units=(5,), pieces=3, n_classes=4, dtype=np.float64, seed=seed)
    rng = np.random.default_rng(100 + seed)
    return model, rng.random((5, 6)), rng.integers(0, 4, 5)


# Each factory takes the model (Multitask needs its sizes) and returns an objective.
MEMBERS = {
    "ce": lambda m: R.CrossEntropy(),
    "wd": lambda m: R.WeightDecay(l1=0.01, l2=0.02),
    "adv-pinf": lambda m: R.AdversarialTraining(0.1, INF),
    "adv-p2": lambda m: R.AdversarialTraining(0.1, 2, alpha=0.3),
    "adv-p1": lambda m: R.AdversarialTraining(0.1, 1),
    "adv-p1.5": lambda m: R.AdversarialTraining(0.1, 1.5, alpha=0.0),
    "gp-pinf": lambda m: R.GradientPenalty(0.1, INF),
    "gp-p2": lambda m: R.GradientPenalty(0.1, 2),
    "gp-p1": lambda m: R.GradientPenalty(0.1, 1),
    "gp-p3": lambda m: R.GradientPenalty(0.1, 3),
    "datagrad-l1": lambda m: R.DataGrad(0.7, 0.1, "l1"),
    "datagrad-l2": lambda m: R.DataGrad(1.0, 0.1, "l2"),
    "datagrad-l1-fd": lambda m: R.DataGradFD(1.0, 0.1, "l1", phi=0.1),
    "datagrad-l2-fd": lambda m: R.DataGradFD(0.7, 0.1, "l2", phi=0.1),
    "dbp": lambda m: R.DoubleBackprop(0.1),
    "multitask": lambda m: R.Multitask.for_model(m, 0.5),
    "vat": lambda m: R.VirtualAdversarial(0.5, seed=3),
    "vat-3it": lambda m: R.VirtualAdversarial(0.5, xi=1e-3, power_iterations=3, seed=4),
    "sum": lambda m: R.DataGrad(1.0, 0.1, "l2") + R.Multitask.for_model(m, 0.5) + R.WeightDecay(l2=0.01),
    "scaled": lambda m: R.CrossEntropy() + 0.5 * R.VirtualAdversarial(0.5, seed=5),
    "jacreg": lambda m: R.JacobianPenalty(0.1),
    "spectreg": lambda m: R.SpectralPenalty(0.1, seed=6),
    "wasserstein-p1": lambda m: R.WassersteinPenalty(0.1, 1),
    "wasserstein-p2": lambda m: R.WassersteinPenalty(0.1, 2),
    "wasserstein-p3-l1": lambda m: R.WassersteinPenalty(0.1, 3, ground=1),
    "wasserstein-pinf-linf": lambda m: R.WassersteinPenalty(0.1, INF, ground=INF),
    "jacreg+wasserstein": lambda m: R.JacobianPenalty(0.1) + 0.5 * R.WassersteinPenalty(0.1, 2),
    # the successors (tests/test_successors.py has their own checks)
    "trades": lambda m: R.TRADES(0.1, 3.0, steps=3, seed=7),
    "fgsm-rs": lambda m: R.FGSMRandomStart(0.1, seed=8),
    "n-fgsm": lambda m: R.NFGSM(0.1, seed=9),
    "gp-fd": lambda m: R.GradientPenaltyFD(0.3, h=0.05),
    "gp-fd-q1": lambda m: R.GradientPenaltyFD(0.3, h=0.05, p=INF),
    "gradalign": lambda m: R.GradAlign(0.1, 0.7, seed=10),
    "cure": lambda m: R.CURE(0.5, h=0.3),
    "llr": lambda m: R.LocalLinearity(0.1, 2.0, 1.5, steps=3, seed=11),
}


def trainables(model, objective):
    return model.parameters() + objective.parameters()


def param_grads(loss, params):
    """∂loss/∂θ as host arrays, zeros for parameters the loss does not use."""
    gs = mg.grad(loss, params, allow_unused=True)
    return [np.zeros(p.shape) if g is None else as_numpy(g.data) for p, g in zip(params, gs)]


def assert_grads_close(a, b, rtol=1e-12, atol=1e-14):
    for i, (ga, gb) in enumerate(zip(a, b)):
        np.testing.assert_allclose(ga, gb, rtol=rtol, atol=atol, err_msg=f"parameter {i}")


# --- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", MEMBERS)
def test_parameter_gradient_matches_finite_differences(key):
    model, x, y = small_problem()
    objective = MEMBERS[key](model)
    frozen = objective.frozen(model, x, y)  # stop-gradient quantities fixed at the base point
    assert mg.gradcheck(lambda *params: frozen(model, x, y), trainables(model, objective))


@pytest.mark.parametrize("key", MEMBERS)
def test_objective_gradient_equals_frozen_gradient(key):
    # The fast path (one forward for L(x) and g) must give the loss and gradient of the
    # frozen objective that the gradient check verified.  VAT draws a random start, so
    # two objectives with one seed make the two paths draw the same one.
    model, x, y = small_problem()
    fast, slow = MEMBERS[key](model), MEMBERS[key](model)
    if key == "multitask" or key == "sum":
        slow = fast  # one decoder for both
    params = trainables(model, fast)
    loss = fast(model, x, y)
    frozen_loss = slow.frozen(model, x, y)(model, x, y)
    assert loss.item() == pytest.approx(frozen_loss.item(), rel=1e-13)
    assert_grads_close(param_grads(loss, params), param_grads(frozen_loss, params))


@pytest.mark.parametrize("make", [lambda: R.AdversarialTraining(0.1, INF), lambda: R.AdversarialTraining(0.1, 2, alpha=0.3),
                                  lambda: R.DataGradFD(1.0, 0.1, "l1", phi=0.1),
                                  lambda: R.DataGradFD(0.7, 0.1, "l2", phi=0.1)])
def test_the_fast_path_equals_the_rule_as_written(make):
    # __call__ shares the clean pass (objective.clean_pass); rule is the formula word for word.
    model, x, y = small_problem()
    objective, params = make(), model.parameters()
    fast, slow = objective(model, x, y), objective.rule(model, x, y)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-13)
    assert_grads_close(param_grads(fast, params), param_grads(slow, params))


def test_the_shared_clean_pass_gives_the_plain_input_gradient():
    from minigrad.objective import clean_pass
    model, x, y = small_problem()
    for weight in (1.0, 0.5, 0.3):
        held, g = clean_pass(model, x, y, weight)
        summed, g_plain = P.loss_and_input_gradient(model, x, y)
        np.testing.assert_allclose(g.data, g_plain.data, rtol=1e-12, atol=1e-15)
        assert held.item() == pytest.approx(weight * summed.item() / len(y), rel=1e-14)


def test_stopping_the_perturbation_is_a_choice_visible_to_gradcheck():
    # Without freezing, the value L(x + r*(θ)) for p = 2 has an extra O(ε²) term (the
    # derivative through r*, PAPERS.md claim 7) that the training direction leaves out.
    model, x, y = small_problem()
    objective = R.AdversarialTraining(1.0, 2, alpha=0.0)
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda *params: objective(model, x, y), model.parameters())


@pytest.mark.parametrize("make", [lambda: R.AdversarialTraining(0.1, 2, alpha=0.3),
                                  lambda: R.DataGradFD(1.0, 0.05, "l2", phi=0.1)])
def test_perturbed_point_sweeps_the_clean_graph_once_and_refuses_a_second_derivative(make):
    # One backward of the clean loss gives g and ∇θL(x); the loss hands ∇θL(x) on as a constant
    # (HeldGradient), so a second derivative of it would be wrong: it is an error, not a silent 0.
    model, x, y = small_problem()
    loss = make()(model, x, y)
    (g,) = mg.grad(loss, model.parameters()[:1], create_graph=False)
    assert np.isfinite(g.data).all()
    with pytest.raises(RuntimeError, match="HeldGradient cannot be differentiated twice"):
        mg.grad(make()(model, x, y), model.parameters()[:1], create_graph=True)


def test_double_backprop_is_exact_datagrad_l2():
    model, x, y = small_problem()
    params = model.parameters()
    a = R.DoubleBackprop(0.3)(model, x, y)
    b = R.DataGrad(alpha=1.0, beta=0.3, norm="l2")(model, x, y)
    assert a.item() == b.item()
    assert_grads_close(param_grads(a, params), param_grads(b, params), rtol=0, atol=0)


def test_exact_datagrad_l1_is_the_p_inf_gradient_penalty():
    # ‖J‖₁ is the dual norm of p = ∞: DataGrad-L1 with α = 1, β = ε is the FGSM member's penalty.
    model, x, y = small_problem()
    params = model.parameters()
    a = R.DataGrad(1.0, 0.2, "l1")(model, x, y)
    b = R.GradientPenalty(0.2, INF)(model, x, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-14)
    assert_grads_close(param_grads(a, params), param_grads(b, params))


@pytest.mark.parametrize("a", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("eps", [0.05, 0.25])
def test_goodfellow_is_finite_difference_datagrad_l1(a, eps):
    # PAPERS.md §2 and claim 5: a·L(x) + (1−a)·L(x + ε sign g) has gradient
    # a∇L(x) + (1−a)∇L(x + ε sign g); FD DataGrad-L1 with α = 1, β = (1−a)ε, φ = ε gives
    # (1 − β/φ)∇L(x) + (β/φ)∇L(x + φ sign g) = the same.  Values agree too (for L1).
    model, x, y = small_problem()
    params = model.parameters()
    adv = R.AdversarialTraining(eps, INF, alpha=a)(model, x, y)
    dg = R.DataGradFD(alpha=1.0, beta=(1 - a) * eps, norm="l1", phi=eps)
    dg = dg(model, x, y)
    assert adv.item() == pytest.approx(dg.item(), rel=1e-13)
    assert_grads_close(param_grads(adv, params), param_grads(dg, params), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_finite_difference_datagrad_converges_linearly_to_exact(norm):
    # Claim 4: ‖∇_FD − ∇_exact‖ = O(φ).  Steps 1e-2 → 1e-3 → 1e-4 should cut the error
    # about tenfold each (float64 roundoff, ~1e-16/φ, is far below at these steps).
    model, x, y = small_problem()
    params = model.parameters()
    exact = np.concatenate([g.ravel() for g in param_grads(R.DataGrad(1.0, 0.5, norm)(model, x, y), params)])
    errors = []
    for step in (1e-2, 1e-3, 1e-4):
        fd = R.DataGradFD(1.0, 0.5, norm, phi=step)
        approx = np.concatenate([g.ravel() for g in param_grads(fd(model, x, y), params)])
        errors.append(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
    assert errors[-1] < 1e-4, errors
    for coarse, fine in zip(errors, errors[1:]):
        assert 5 < coarse / fine < 20, errors


def test_zero_input_gradient_gives_no_nan():
    # All-zero weights: logits 0, so g = 0 exactly, every Maxout piece ties, and every
    # norm sits at its kink.  Conventions: r*(0) = 0, ∂‖g‖/∂g = 0 at g = 0; no NaN anywhere.
    model, x, y = small_problem()
    for p in model.parameters():
        p.data = np.zeros_like(p.data)
    members = [R.GradientPenalty(0.1, p) for p in (1, 1.5, 2, INF)]
    members += [R.AdversarialTraining(0.1, p) for p in (1, 1.5, 2, INF)]
    members += [R.DataGrad(1.0, 0.1, n) for n in ("l1", "l2")]
    members += [R.DataGradFD(1.0, 0.1, n, phi=0.1) for n in ("l1", "l2")]
    members += [R.VirtualAdversarial(0.5), R.JacobianPenalty(0.1), R.SpectralPenalty(0.1)]
    members += [R.WassersteinPenalty(0.1, p, ground) for p in (1, 1.5, 2, INF) for ground in (1, 2, INF)]
    plain = param_grads(R.CrossEntropy()(model, x, y), model.parameters())
    for objective in members:
        grads = param_grads(objective(model, x, y), model.parameters())
        assert all(np.isfinite(g).all() for g in grads), objective
        if objective.includes_data_loss:  # the penalty adds nothing at g = 0
            assert_grads_close(grads, plain, rtol=1e-12, atol=1e-15)


# --- individual members ----------------------------------------------------------------------
def test_weight_decay_value_and_gradient_cover_weights_only():
    model, x, y = small_problem()
    wd = R.WeightDecay(l1=0.01, l2=0.1)
    weights = [p.data for n, p in model.named_parameters() if n.endswith("weight")]
    expected = sum(0.01 * np.abs(w).sum() + 0.05 * (w * w).sum() for w in weights)
    loss = wd(model, x, y)
    assert loss.item() == pytest.approx(expected, rel=1e-13)
    for (name, p), g in zip(model.named_parameters(), param_grads(loss, model.parameters())):
        want = 0.01 * np.sign(p.data) + 0.1 * p.data if name.endswith("weight") else 0 * p.data
        np.testing.assert_allclose(g, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("p", [1, 1.5, 2, INF])
def test_adversarial_perturbation_is_the_worst_case_of_the_per_example_gradient(p):
    model, x, y = small_problem()
    delta = R.AdversarialTraining(0.3, p).perturbation(model, x, y)
    g = P.input_gradient(model, x, y)
    np.testing.assert_array_equal(delta.data, P.worst_case(g, 0.3, p).data)
    np.testing.assert_allclose(P.per_example_norm(delta, p).data, 0.3, rtol=1e-12)
    assert not delta.requires_grad


def test_vat_perturbation_is_seeded_and_has_norm_eps():
    model, x, y = small_problem()
    r1 = R.VirtualAdversarial(0.7, seed=11).perturbation(model, x, y)
    r2 = R.VirtualAdversarial(0.7, seed=11).perturbation(model, x, y)
    np.testing.assert_array_equal(r1.data, r2.data)
    np.testing.assert_allclose(P.per_example_norm(r1, 2).data, 0.7, rtol=1e-12)
    vat = R.VirtualAdversarial(0.7, seed=11)
    assert not np.allclose(vat.perturbation(model, x, y).data, vat.perturbation(model, x, y).data)


def test_vat_power_iteration_finds_the_top_eigenvector_of_the_kl_hessian():
    # Inside a linear region, ∇²_d KL(p(·|x) ‖ p(·|x + d)) at d = 0 is Aᵀ(diag p − ppᵀ)A with
    # A = ∂logits/∂x (PAPERS.md claim 9).  Many power iterations align r with its top
    # eigenvector (up to sign), per example.
    model, x, y = small_problem()
    xt = mg.Tensor(x, requires_grad=True)
    logits = model(xt)
    A = np.stack([as_numpy(mg.grad(logits[:, k].sum(), xt)[0].data) for k in range(4)], axis=1)
    p = as_numpy(mg.functional.softmax(logits).data)
    H = np.einsum("bki,bkl,blj->bij", A, p[:, :, None] * np.eye(4) - p[:, :, None] * p[:, None, :], A)
    top = np.linalg.eigh(H)[1][..., -1]
    r = R.VirtualAdversarial(1.0, xi=1e-5, power_iterations=30, seed=0).perturbation(model, x, y).data
    cos = np.abs(np.sum(r * top, axis=1)) / np.linalg.norm(r, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-6)


def test_multitask_reconstructs_from_the_chosen_hidden_layer():
    model = nn.maxout_mlp(in_features=6, units=(5, 7), pieces=3, n_classes=4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).random((5, 6))
    for layer, units in ((0, 5), (1, 7)):
        term = R.Multitask.for_model(model, gamma=0.3, layer=layer)
        assert (term.decoder.in_features, term.decoder.out_features) == (units, 6)
        h = mg.Tensor(x)
        for m in model.layers[: model.hidden_index(layer) + 1]:
            h = m(h)
        expected = 0.3 * np.mean((as_numpy(term.decoder(h).data) - x) ** 2)
        assert term(model, x, None).item() == pytest.approx(expected, rel=1e-13)
        assert term.parameters() == term.decoder.parameters()
    assert not R.Multitask.for_model(model, 0.1).includes_data_loss


def test_members_run_on_the_strict_device_double():
    # The strict device refuses host arrays, as CuPy would: this catches a perturbation,
    # random draw or mask made on the host.
    model, x, y = small_problem()
    model.to("strict")
    xs, ys = to_device(x, "strict"), to_device(y, "strict")
    for key, make in MEMBERS.items():
        objective = make(model)
        for p in objective.parameters():
            p.data = to_device(p.data, "strict")
        gs = mg.grad(objective(model, xs, ys), trainables(model, objective), allow_unused=True)
        assert all(g is None or g.device == "strict" for g in gs), key


# --- composition, names, validation -------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Combined:UserWarning")  # composes full objectives on purpose
def test_sum_and_scaling_add_gradients():
    model, x, y = small_problem()
    a, b = R.DataGrad(1.0, 0.2, "l2"), R.Multitask.for_model(model, 0.5)
    c = R.AdversarialTraining(0.1, 2)
    params = trainables(model, a + b)
    ga, gb, gc = (param_grads(o(model, x, y), params) for o in (a, b, c))
    combined = param_grads((a + b + 0.25 * c)(model, x, y), params)
    assert_grads_close(combined, [u + v + 0.25 * w for u, v, w in zip(ga, gb, gc)], rtol=1e-12, atol=1e-15)
    via_sum = param_grads(sum([a, b, 0.25 * c])(model, x, y), params)
    assert_grads_close(via_sum, combined, rtol=0, atol=0)


def test_composition_structure():
    model, _, _ = small_problem()
    mt = R.Multitask.for_model(model, 0.1)
    obj = R.CrossEntropy() + R.WeightDecay(l2=1e-4) + mt
    assert isinstance(obj, R.Combined) and len(obj.members) == 3  # flattened
    assert obj.includes_data_loss and not (R.WeightDecay(l2=1) + mt).includes_data_loss
    assert obj.parameters() == mt.decoder.parameters()
    assert (obj + mt).parameters() == mt.decoder.parameters()  # no duplicates
    with pytest.raises(TypeError):
        R.CrossEntropy() + 1.0
    with pytest.raises(ValueError, match="weight"):
        -1.0 * R.CrossEntropy()


@pytest.mark.filterwarnings("ignore:Combined:UserWarning")  # composes full objectives on purpose
def test_names_are_the_canonical_member_names_and_reprs_add_the_strengths():
    model, _, _ = small_problem()
    names = {  # object: (name, repr)
        R.CrossEntropy(): ("plain", "plain"),
        R.WeightDecay(l2=1e-4): ("l2", "l2(l2=0.0001)"),
        R.WeightDecay(l1=0.1, l2=0.2): ("l1+l2", "l1+l2(l1=0.1,l2=0.2)"),
        R.AdversarialTraining(0.1, 2): ("adv-p2", "adv-p2(eps=0.1)"),
        R.AdversarialTraining(0.25, "inf", alpha=0.3): ("adv-pinf", "adv-pinf(eps=0.25,alpha=0.3)"),
        R.AdversarialTraining(0.1, 1): ("adv-p1", "adv-p1(eps=0.1)"),
        R.GradientPenalty(0.1, INF): ("gp-q1", "gp-q1(eps=0.1)"),
        R.GradientPenalty(0.1, 2): ("gp-q2", "gp-q2(eps=0.1)"),
        R.DataGrad(1, 0.01, "l1"): ("datagrad-l1", "datagrad-l1(alpha=1,beta=0.01)"),
        R.DataGradFD(1, 0.01, "l2", 0.1): ("datagrad-l2-fd", "datagrad-l2-fd(alpha=1,beta=0.01,phi=0.1)"),
        R.DoubleBackprop(0.01): ("double-backprop", "double-backprop(lam=0.01)"),
        R.VirtualAdversarial(2.0): ("vat", "vat(eps=2)"),
        R.Multitask.for_model(model, 0.1): ("multitask", "multitask(gamma=0.1)"),
        R.JacobianPenalty(0.01): ("jacreg", "jacreg(lam=0.01)"),
        R.SpectralPenalty(0.01, seed=2): ("spectreg", "spectreg(lam=0.01)"),
        R.WassersteinPenalty(0.3, 1): ("wasserstein-p1", "wasserstein-p1(eps=0.3)"),
        R.WassersteinPenalty(0.3, 2, ground=1): ("wasserstein-p2-l1", "wasserstein-p2-l1(eps=0.3)"),
        R.CrossEntropy() + 0.5 * R.VirtualAdversarial(2.0): ("plain + 0.5*vat", "plain + 0.5*vat(eps=2)"),
        2 * (R.CrossEntropy() + R.DoubleBackprop(1)): ("2*(plain + double-backprop)",
                                                       "2*(plain + double-backprop(lam=1))"),
    }
    for objective, (name, rep) in names.items():
        assert (objective.name, repr(objective)) == (name, rep)


def test_registry_builds_every_member_under_its_name():
    model, x, y = small_problem()
    assert len(set(M.MEMBERS)) == 27
    for name in M.MEMBERS:
        objective = M.member(name, model, M.Strengths(eps=0.1))
        assert objective.name == name and repr(objective).startswith(name)
        assert np.isfinite(objective(model, x, y).item())
    with pytest.raises(ValueError, match="name must be one of.*'gp1'"):
        M.member("gp1", model)


def test_registry_budgets_and_strengths_follow_compares_formulas():
    # eps2 = eps*sqrt(D)/2 and eps1 = eps*sqrt(D) unless given; gp's eps is gp_scale times the budget.
    model, _, _ = small_problem()  # D = 6
    s = M.Strengths(eps=0.2, gp_scale=0.5, beta_l1=0.03, beta_l2=0.02, l1=1e-3)
    assert s.budgets(64) == {"inf": 0.2, "2": 0.2 * 8 / 2, "1": 0.2 * 8}
    assert M.Strengths(eps=0.1, eps2=0.7, eps1=3.0).budgets(64) == {"inf": 0.1, "2": 0.7, "1": 3.0}
    root = np.sqrt(6)
    assert M.member("adv-p2", model, s).eps == 0.2 * root / 2
    assert M.member("adv-p1", model, s).eps == 0.2 * root
    assert M.member("gp-q1", model, s).eps == 0.5 * 0.2 and M.member("gp-q1", model, s).p == INF
    assert M.member("gp-q2", model, s).eps == 0.5 * (0.2 * root / 2)
    fd = M.member("datagrad-l2-fd", model, s)
    assert (fd.alpha, fd.beta, fd.norm, fd.phi) == (1.0, 0.02, "l2", 0.2)
    assert M.member("double-backprop", model, s).lam == 0.02
    assert M.member("l1", model, s).members[1].l1 == 1e-3
    assert M.member("vat", model, s).members[1].eps == 0.2 * root / 2
    assert M.member("jacreg", model, M.Strengths(beta_jac=0.3)).lam == 0.3
    assert M.member("spectreg", model, M.Strengths(beta_jac=0.3)).lam == 0.3
    w = M.member("wasserstein-p1", model, s)
    assert (w.eps, w.p, w.ground) == (0.5 * (0.2 * root / 2), 1, 2)
    assert M.member("wasserstein-p2", model, s).p == 2


@pytest.mark.parametrize("make, match", [
    (lambda: R.AdversarialTraining(-0.1, 2), "eps.*-0.1"),
    (lambda: R.AdversarialTraining(0.1, 0.5), "p must be a number >= 1 or inf, got 0.5"),
    (lambda: R.AdversarialTraining(0.1, "two"), "p must be"),
    (lambda: R.AdversarialTraining(0.1, 2, alpha=1.5), r"alpha.*\[0, 1\].*1.5"),
    (lambda: R.AdversarialTraining(0.1, 2, alpha=-0.1), "alpha.*-0.1"),
    (lambda: R.GradientPenalty(float("nan"), 2), "eps"),
    (lambda: R.GradientPenalty(0.1, 0), "p must be a number >= 1 or inf, got 0"),
    (lambda: R.DataGrad(1.0, -0.5), "beta.*-0.5"),
    (lambda: R.DataGrad(-1.0, 0.5), "alpha.*-1"),
    (lambda: R.DataGrad(1.0, 0.5, norm="l3"), "norm.*'l3'"),
    (lambda: R.DataGradFD(1.0, 0.5, norm="l3"), "norm.*'l3'"),
    (lambda: R.DataGradFD(1.0, 0.5, phi=-0.01), "phi.*-0.01"),
    (lambda: R.DataGradFD(1.0, 0.5, phi=0), "phi.*> 0.*0"),
    (lambda: R.DataGradFD(1.0, 0.5, phi=None), "phi.*None"),
    (lambda: R.DoubleBackprop(-1), "lam.*-1"),
    (lambda: R.WeightDecay(l2=-1e-4), "l2.*-0.0001"),
    (lambda: R.WeightDecay(l1="x"), "l1.*'x'"),
    (lambda: R.Multitask(nn.Linear(5, 6), gamma=-1), "gamma.*-1"),
    (lambda: R.Multitask(nn.Linear(5, 6), gamma=1, layer=-1), "layer.*-1"),
    (lambda: R.VirtualAdversarial(-1.0), "eps.*-1"),
    (lambda: R.VirtualAdversarial(1.0, xi=0), "xi.*> 0.*0"),
    (lambda: R.VirtualAdversarial(1.0, power_iterations=1.5), "power_iterations.*1.5"),
    (lambda: R.JacobianPenalty(-0.1), "JacobianPenalty: lam.*-0.1"),
    (lambda: R.SpectralPenalty("x"), "SpectralPenalty: lam.*'x'"),
    (lambda: R.WassersteinPenalty(-1.0, 2), "WassersteinPenalty: eps.*-1"),
    (lambda: R.WassersteinPenalty(0.1, 0.5), "WassersteinPenalty: p must be a number >= 1 or inf, got 0.5"),
    (lambda: R.WassersteinPenalty(0.1, 2, ground=0), "WassersteinPenalty: ground must be .* got 0"),
])
def test_invalid_arguments_raise_value_error_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_invalid_decoder_is_a_type_error():
    with pytest.raises(TypeError, match="decoder"):
        R.Multitask("not a module", 0.1)


def test_exact_datagrad_has_no_perturbation():
    # The explicit penalty and the perturbed point are different members, not a switch inside one.
    assert not hasattr(R.DataGrad(1.0, 0.1), "perturbation")
    assert hasattr(R.DataGradFD(1.0, 0.1), "perturbation")


# --- training on the embedded digits -------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return datasets.load_digits()


def sgd(objective, train, epochs, lr=0.1, batch_size=32, seed=0):
    """Plain minibatch SGD on ``model.parameters() + objective.parameters()``.

    Returns the model and the mean objective value of each epoch."""
    model = nn.maxout_mlp(64, (32,), 3, 10, seed=seed)
    params = trainables(model, objective)
    order = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        values = []
        for xb, yb in datasets.minibatches(train, batch_size, seed=order):
            loss = objective(model, xb, yb)
            for p, g in zip(params, mg.grad(loss, params, allow_unused=True)):
                if g is not None:
                    p.data -= lr * g.data
            values.append(loss.item())
        history.append(float(np.mean(values)))
    return model, history


def clean_loss(model, data):
    return R.CrossEntropy()(model, data.x, data.y).item()


TRAINED = {
    "ce": lambda: R.CrossEntropy(),
    "ce+wd": lambda: R.CrossEntropy() + R.WeightDecay(l1=1e-5, l2=1e-4),
    "adv-pinf": lambda: R.AdversarialTraining(0.1, INF),
    "adv-p2": lambda: R.AdversarialTraining(0.5, 2),
    "gp-pinf": lambda: R.GradientPenalty(0.05, INF),
    "gp-p2": lambda: R.GradientPenalty(0.2, 2),
    "datagrad-l1": lambda: R.DataGrad(1.0, 0.02, "l1"),
    "datagrad-l2": lambda: R.DataGrad(1.0, 0.1, "l2"),
    "datagrad-l1-fd": lambda: R.DataGradFD(1.0, 0.02, "l1", phi=0.05),
    "datagrad-l2-fd": lambda: R.DataGradFD(1.0, 0.1, "l2", phi=0.05),
    "dbp": lambda: R.DoubleBackprop(0.1),
    "ce+vat": lambda: R.CrossEntropy() + R.VirtualAdversarial(1.0),
    "jacreg": lambda: R.JacobianPenalty(1e-3),
    "spectreg": lambda: R.SpectralPenalty(1e-3),
    "wasserstein-p1": lambda: R.WassersteinPenalty(0.2, 1),
    "wasserstein-p2": lambda: R.WassersteinPenalty(0.2, 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("key", TRAINED)
def test_every_member_trains_a_maxout_network_on_digits(key, digits):
    train, _ = digits
    objective = TRAINED[key]()
    model, history = sgd(objective, train, epochs=4)
    assert np.isfinite(history).all(), history
    assert history[-1] < history[0], history
    assert clean_loss(model, train) < 0.5 * np.log(10), (key, clean_loss(model, train))


@pytest.mark.slow
def test_multitask_with_datagrad_trains_the_decoder_too(digits):
    train, _ = digits
    model = nn.maxout_mlp(64, (32,), 3, 10, seed=0)
    term = R.Multitask.for_model(model, 0.5)
    before = term.decoder.weight.data.copy()
    reconstruction_before = term(model, train.x, train.y).item()
    objective = R.DataGrad(1.0, 0.02, "l1") + term
    params = trainables(model, objective)
    order = np.random.default_rng(0)
    for _ in range(4):
        for xb, yb in datasets.minibatches(train, 32, seed=order):
            for p, g in zip(params, mg.grad(objective(model, xb, yb), params)):
                p.data -= 0.1 * g.data
    assert not np.allclose(term.decoder.weight.data, before)
    assert term(model, train.x, train.y).item() < reconstruction_before
    assert clean_loss(model, train) < 0.5 * np.log(10)


def test_vat_direction_in_float32_matches_float64():
    # With Miyato's ξ = 1e-6, x + ξd rounds back to x in float32 and the power iteration follows
    # rounding noise (median cosine 0.25 to the float64 direction); the float32 default ξ fixes it.
    from minigrad import datasets
    pytest.importorskip("sklearn")
    x = datasets.load_digits()[0].x[:64]
    m64 = nn.maxout_mlp(64, (32,), 3, 10, seed=0, dtype=np.float64)
    m32 = nn.maxout_mlp(64, (32,), 3, 10, seed=0)
    d64 = R.VirtualAdversarial(1.0, seed=1).perturbation(m64, x.astype(np.float64)).numpy()
    d32 = R.VirtualAdversarial(1.0, seed=1).perturbation(m32, x).numpy()
    cos = (d64 * d32).sum(1) / np.linalg.norm(d64, axis=1) / np.linalg.norm(d32, axis=1)
    assert np.median(cos) > 0.99 and cos.min() > 0.9


def test_multitask_decoder_is_not_a_copy_of_the_first_layer():
    model = nn.maxout_mlp(64, (32,), 3, 10, seed=0)
    decoder = R.Multitask.for_model(model, 1.0, seed=0).decoder.weight.data.ravel()
    w1 = model[0].weight.data.ravel()[: decoder.size]
    assert abs(np.corrcoef(w1, decoder)[0, 1]) < 0.2


def test_adding_two_full_objectives_warns():
    with pytest.warns(UserWarning, match="counted 2 times"):
        R.CrossEntropy() + R.GradientPenalty(0.1)
