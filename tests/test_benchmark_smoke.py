"""Smoke tests of benchmarks/step_time.py and conv_step.py: the objectives they time are the ones they claim.

No timing is asserted.  What is checked: minigrad and PyTorch compute the same loss and parameter
gradients in float64 for every objective (skipped without torch), no float64 array appears in a
float32 step, the analytic FLOP counts, and that ``--quick`` runs end to end.
"""
import importlib.util
import pathlib

import numpy as np
import pytest

_BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    """A benchmark script imported as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, _BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("step_time")


def test_conv_benchmark_times_what_it_claims():
    # benchmarks/conv_step.py: plain and gp-q1 on the small conv preset agree with PyTorch in float64.
    pytest.importorskip("torch")
    conv = _load("conv_step")
    report = conv.check_agreement(batch=3)
    assert set(report) == set(conv.OBJECTIVES)
    for name, (loss_err, grad_err) in report.items():
        assert loss_err < 1e-10 and grad_err < 1e-10, (name, loss_err, grad_err)


def test_float64_agreement_with_pytorch(bench):
    pytest.importorskip("torch")
    for batch in (5, 1):
        report = bench.check_agreement(batch=batch)
        assert set(report) == set(bench.OBJECTIVES)
        for name, (loss_err, grad_err) in report.items():
            assert loss_err < 1e-10 and grad_err < 1e-10, (name, batch, loss_err, grad_err)


def test_objectives_differ_from_each_other(bench):
    # each objective really is a different training direction (no silent fallback to plain)
    from minigrad.nn import maxout_mlp
    model = maxout_mlp(seed=0, dtype=np.float64)
    params = model.parameters()
    x, y = bench.data(6, np.float64)
    first = {}
    for name in bench.OBJECTIVES:
        _, terms = bench.mg_objective(name, model, params, x, y)  # the library's member
        first[name] = bench.combined_grads([(w, [g.data for g in gs]) for w, gs in terms])[0]
    names = list(first)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(first[a], first[b], rtol=1e-9, atol=0), (a, b)


def test_no_float64_in_a_float32_step(bench):
    report = bench.check_dtypes(batch=4)
    assert set(report) == set(bench.OBJECTIVES) and all(n > 0 for n in report.values())


def test_dtype_check_catches_a_leak(bench, monkeypatch):
    from minigrad import ops
    forward = ops.Neg.forward
    monkeypatch.setattr(ops.Neg, "forward", lambda self, x: forward(self, x).astype(np.float64))
    with pytest.raises(AssertionError, match="Neg.forward: output 0 is a float64"):
        bench.check_dtypes(["plain"], batch=2)


def test_flop_counts(bench):
    f1, f2, f3 = (2 * 128 * i * o for i, o in bench.LAYERS)
    fwd = f1 + f2 + f3
    assert bench.flops("plain", 128) == 2 * fwd + f2 + f3  # fwd, dW of all, dX of the hidden layers
    for name in ("adv-pinf", "datagrad-l1-fd", "double-backprop", "gp-q1"):
        assert bench.flops(name, 128) == 5 * fwd + f2 + f3
    # PERFORMANCE-NOTES.md: at ~207 GFLOP/s the products alone take 3.4 ms (plain), 7.9 ms (others)
    assert abs(bench.flops("plain", 128) / 207e9 * 1e3 - 3.4) < 0.05
    assert abs(bench.flops("double-backprop", 128) / 207e9 * 1e3 - 7.95) < 0.05
    for name in bench.OBJECTIVES:
        ops = bench.gemm_operands(name, 3, np.float32)
        assert sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in ops) == bench.flops(name, 3)


def test_gemm_count_of_one_library_step_is_what_the_readme_states(bench):
    # Every MatMul of one step through the library member (objective + grad), counted at the op.
    from minigrad import ops
    from minigrad.nn import maxout_mlp
    counted = {}
    forward = ops.MatMul.forward
    for name in bench.OBJECTIVES:
        model = maxout_mlp(seed=0)
        x, y = bench.data(4, np.float32)
        calls = []
        ops.MatMul.forward = lambda self, a, b: calls.append(1) or forward(self, a, b)
        try:
            bench.mg_step(name, model, model.parameters(), x, y, 0.01)
        finally:
            ops.MatMul.forward = forward
        counted[name] = len(calls)
        assert counted[name] == len(bench.gemm_shapes(name, 4)), (name, counted[name])
    assert counted == {"plain": 8, "adv-pinf": 17, "double-backprop": 17, "gp-q1": 17, "datagrad-l1-fd": 17}


def test_quick_run(bench, capsys):
    assert bench.main(["--quick", "--objectives", "plain,gp-q1", "--rounds", "1", "--steps", "1",
                       "--threads", "1", "--check-dtypes"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["plain"], ["gp-q1"])]
    assert "plain" in rows and "gp-q1" in rows
    assert sum("library path: fit" in line for line in out.splitlines()) == 2
    assert sum("bare engine + the same momentum update" in line for line in out.splitlines()) == 2


def test_inline_momentum_is_the_library_sgd_bit_for_bit(bench):
    # bare+momentum claims to do optim.SGD's arithmetic: three steps of each from the same weights
    # must leave identical parameters (so fit/(bare+momentum) compares like with like).  μ = 0.7, the end
    # of the Maxout ramp: μ = 0.5 is exact in float32 and would hide a different rounding of μ·v.
    from minigrad import grad, optim
    from minigrad.nn import maxout_mlp
    x, y = bench.data(6, np.float32)
    for name in bench.OBJECTIVES:
        inline, library = maxout_mlp(seed=0), maxout_mlp(seed=0)
        buffers = [(np.zeros_like(p.data), np.empty_like(p.data)) for p in inline.parameters()]
        opt = optim.SGD(library.parameters(), lr=0.01, momentum=0.7)
        objective, library_objective = bench.mg_member(name, inline), bench.mg_member(name, library)
        for _ in range(3):
            bench.mg_momentum_step(name, inline, inline.parameters(), x, y, 0.01, 0.7, buffers, objective)
            opt.step(grad(library_objective(library, x, y), library.parameters()))
        for a, b in zip(inline.parameters(), library.parameters()):
            assert np.array_equal(a.data, b.data), name


def test_momentum_update_benchmark_runs_and_its_inline_passes_are_the_library_sgd(capsys):
    momentum = _load("momentum_update")
    assert momentum.main(steps=2, warmup=1) == 0
    out = capsys.readouterr().out
    assert "optim.SGD.step" in out and "three passes" in out
    # "four passes inline" claims optim.SGD's arithmetic: the same updates from the same state are
    # bit-identical (10⁵ values and μ = 0.7, so that any other rounding of ηg or μv shows)
    from minigrad import Tensor, optim
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal((2, 400, 250)).astype(np.float32)
    inline, v, s = p.copy(), np.zeros_like(p), np.empty_like(p)
    sgd = optim.SGD([Tensor(p.copy(), requires_grad=True)], lr=momentum.LR, momentum=0.7)
    for _ in range(3):
        momentum._four(inline, g, v, s, momentum.LR, 0.7)
        sgd.step([g])
    assert np.array_equal(inline, sgd.params[0].data)


def test_attack_cost_quick_run(capsys):
    # benchmarks/attack_cost.py --quick: the strong suite, PGD-10 and (with ART) AutoAttack, on tiny sizes.
    pytest.importorskip("sklearn")
    import importlib.util as iu
    with_art = all(iu.find_spec(m) is not None for m in ("torch", "art", "multiprocess"))
    result = _load("attack_cost").main(["--quick"] + ([] if with_art else ["--no-art"]))
    out = capsys.readouterr().out
    assert "minigrad strong suite" in out and "minigrad PGD-10" in out and "CPU:" in out and "BLAS:" in out
    assert len(result["rows"]) == 2 + with_art and ("ratio strong suite / ART AutoAttack" in out) == with_art
    for error, seconds, per_1000 in result["rows"].values():
        assert 0 <= error <= 1 and seconds > 0 and per_1000 == pytest.approx(1000 * seconds / result["n"])


def test_blas_kernels_quick_run(capsys):
    # benchmarks/blas_kernels.py --quick: each kernel in a child, every product in four orders, a table.
    _load("blas_kernels").main(["--quick", "--kernels", "default,Haswell"])
    out = capsys.readouterr().out
    assert "kernel default: OpenBLAS" in out and "kernel Haswell: OpenBLAS" in out
    assert "mlp dX 1" in out and out.count("*") >= 12  # one best layout per product and kernel


def test_profile_step_hooks_every_grad_and_runs(capsys):
    # benchmarks/profile_step.py: the per-op hook reaches every module that calls grad() by name.
    profile = _load("profile_step")
    profile.clock = __import__("time").perf_counter
    out = profile.profile("gp-q1", 4, 2)
    assert "GEMM (MatMul.forward)" in out and "grad() calls: 2" in out


def test_profile_step_pairs_each_step_with_its_own_gemms(monkeypatch):
    # The paired non-GEMM time subtracts, from each step, exactly the time its own products took: with every
    # product made 5 ms slower, plain's 8 products add 40 ms to a step and nothing to its paired non-GEMM time.
    import time
    from minigrad import nn, ops
    profile = _load("profile_step")
    monkeypatch.setattr(profile, "clock", time.perf_counter)
    forward = ops.MatMul.forward
    monkeypatch.setattr(ops.MatMul, "forward", lambda self, a, b: time.sleep(0.005) or forward(self, a, b))
    slow = ops.MatMul.forward
    model = nn.maxout_mlp(seed=0)
    params = model.parameters()
    x, y = profile.data(4, np.float32, seed=1)
    whole = [sum(profile.step_parts("plain", model, params, x, y, 0.01)) for _ in range(2)]
    paired = profile._non_gemm_paired("plain", model, params, x, y, 0.01, 2)
    assert min(whole) > 8 * 0.005 and max(paired) < 8 * 0.005 / 2
    assert ops.MatMul.forward is slow  # the timing wrapper is taken off again


def test_profile_step_profiles_the_bare_step_that_step_time_times():
    # profile_step.step_parts is step_time.mg_step's arithmetic (seeded with lr, then p -= g): the same bits.
    from minigrad import nn
    profile, bench = _load("profile_step"), _load("step_time")
    for name in ("plain", "adv-pinf"):
        a, b = nn.maxout_mlp(seed=0, dtype=np.float64), nn.maxout_mlp(seed=0, dtype=np.float64)
        x, y = bench.data(8, np.float64, seed=1)
        profile.step_parts(name, a, a.parameters(), x, y, 0.01)
        bench.mg_step(name, b, b.parameters(), x, y, 0.01)
        for p, q in zip(a.parameters(), b.parameters()):
            assert np.array_equal(p.data, q.data), name


def test_numpy_floor_writes_the_same_step_by_hand():
    # benchmarks/numpy_floor.py: the hand-written steps (the penalties by a derivation on paper) have the
    # engine's gradients in float64, and it runs.
    floor = _load("numpy_floor")
    report = floor.check_agreement(batch=8)
    assert set(report) == set(floor.MEMBERS) and max(report.values()) < 1e-12
    engine, hand = floor.measure("gp-q1", 4, steps=2, rounds=2, clock=__import__("time").perf_counter)
    assert len(engine) == len(hand) == 4 and (engine > 0).all() and (hand > 0).all()


@pytest.mark.parametrize("argv, says", [(["--batch", "0"], "--batch: must be a whole number of at least 1, got '0'"),
                                        (["--steps", "x"], "--steps: must be a whole number of at least 1, got 'x'"),
                                        (["--members", "nope"], "no hand-written step for 'nope'")])
def test_numpy_floor_refuses_a_bad_value_in_one_line_before_any_work(argv, says, capsys):
    floor = _load("numpy_floor")
    with pytest.raises(SystemExit) as stop:
        floor.main(argv)
    said = capsys.readouterr().err + (stop.value.code if isinstance(stop.value.code, str) else "")
    assert says in said
