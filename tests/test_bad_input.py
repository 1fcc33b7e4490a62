"""Bad input, one row per case: each gets one clear error of minigrad's own (type and a fragment of
its message), raised before any work, or a defined result.  Python API rows first, then the
command line (exit code and one line on stderr, never a traceback).

The numbered cases are issue 9's; the rest are the classes they belong to."""
import json
import os
import signal
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import cli, datasets, nn, optim, train
from minigrad import perturbations as P
from minigrad.checkpoint import load_checkpoint, save_checkpoint
from minigrad.errors import CheckpointError, DataError, Diverged, InvalidArgument, InvalidDType, MinigradError

pytest.importorskip("sklearn")  # the CLI rows train on the embedded digits

TINY = ["--units", "8", "--pieces", "2", "--epochs", "1", "--quiet", "--threads", "1"]


def _model(d=4, k=3):
    return nn.maxout_mlp(d, (5,), 2, k, seed=0)


def _data(n=12, d=4, k=3):
    rng = np.random.default_rng(0)
    return datasets.Dataset(rng.random((n, d)), np.arange(n) % k, k)


def _checkpoint(tmp_path):
    model = _model()
    return save_checkpoint(tmp_path / "c.npz", model, optim.SGD(model.parameters(), lr=0.1), epoch=1)


def _rewrite_meta(path, meta_text):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = np.array(meta_text)
    np.savez(path, **arrays)


def _damage(kind):
    def make(tmp_path):
        path = _checkpoint(tmp_path)
        raw = path.read_bytes()
        if kind == "truncated":
            path.write_bytes(raw[: len(raw) // 2])
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "random":
            path.write_bytes(np.random.default_rng(0).bytes(300))
        elif kind == "npy":
            np.save(path.with_suffix(".npy"), np.ones(3))
            os.replace(path.with_suffix(".npy"), path)
        elif kind == "pickled":
            np.savez(path, meta=np.array([{"a": 1}], dtype=object))
        elif kind == "meta-not-json":
            _rewrite_meta(path, "{not json")
        elif kind == "meta-a-list":
            _rewrite_meta(path, "[1, 2]")
        elif kind == "other-npz":
            np.savez(path, w=np.ones(2))
        return path
    return make


ROWS = {
    # 5. a Python number meeting an integer Tensor: kept exactly, or refused (never truncated)
    "int Tensor * 2.5": (lambda tp: mg.Tensor(np.array([1, 2, 3])) * 2.5, InvalidDType,
                         "2.5 cannot meet a int64 Tensor without changing its value"),
    "int Tensor + nan": (lambda tp: mg.Tensor(np.array([1, 2, 3])) + float("nan"), InvalidDType, "nan cannot meet"),
    "uint8 Tensor - 1": (lambda tp: mg.Tensor(np.array([1, 2], np.uint8)) * -1, InvalidDType, "-1 cannot meet"),
    # 9. empty batches into the closed form and the attacks
    "worst_case on an empty batch": (lambda tp: P.worst_case(np.zeros((0, 4)), 0.1, 2), InvalidArgument,
                                     "worst_case: g must hold at least one example"),
    "fgsm on an empty batch": (lambda tp: P.fgsm(_model(), np.zeros((0, 4), np.float32), np.zeros(0, int), 0.1),
                               InvalidArgument, "holding at least one example"),
    "pgd on an empty batch": (lambda tp: P.pgd(_model(), np.zeros((0, 4), np.float32), np.zeros(0, int), 0.1, 2,
                                               steps=3, step_size=0.05), InvalidArgument, "holding at least one example"),
    "worst_case p 0.5": (lambda tp: P.worst_case(np.ones((1, 4)), 0.1, 0.5), InvalidArgument,
                         "p must be a number >= 1 or inf, got 0.5"),
    "worst_case eps inf": (lambda tp: P.worst_case(np.ones((1, 4)), np.inf, 2), InvalidArgument,
                           "eps must be a finite number >= 0"),
    # 2. an infinite max norm would compute inf/inf = NaN in every weight
    "max_norm_ inf": (lambda tp: optim.max_norm_(np.ones((2, 2)), np.inf), InvalidArgument,
                      "max_norm must be a finite number > 0, got inf"),
    "SGD max_col_norm inf": (lambda tp: optim.SGD(_model().parameters(), lr=0.1, max_col_norm=np.inf),
                             InvalidArgument, "must be a finite number > 0, got inf"),
    # 4. damaged checkpoints: one exception type, naming the file, never a pickle hint
    "checkpoint truncated": (lambda tp: load_checkpoint(_damage("truncated")(tp)), CheckpointError,
                             "c.npz is truncated or damaged"),
    "checkpoint empty": (lambda tp: load_checkpoint(_damage("empty")(tp)), CheckpointError, "c.npz is empty"),
    "checkpoint random bytes": (lambda tp: load_checkpoint(_damage("random")(tp)), CheckpointError,
                                "not an .npz archive"),
    "checkpoint a .npy": (lambda tp: load_checkpoint(_damage("npy")(tp)), CheckpointError, "a single NumPy array"),
    "checkpoint with objects": (lambda tp: load_checkpoint(_damage("pickled")(tp)), CheckpointError,
                                "holds Python objects"),
    "checkpoint meta not JSON": (lambda tp: load_checkpoint(_damage("meta-not-json")(tp)), CheckpointError,
                                 "meta entry is not valid JSON"),
    "checkpoint meta a list": (lambda tp: load_checkpoint(_damage("meta-a-list")(tp)), CheckpointError,
                               "meta entry is a JSON list"),
    "checkpoint another npz": (lambda tp: load_checkpoint(_damage("other-npz")(tp)), CheckpointError,
                               "no 'meta' entry"),
    "checkpoint missing": (lambda tp: load_checkpoint(tp / "nope.npz"), CheckpointError, "no such checkpoint"),
    "checkpoint a directory": (lambda tp: load_checkpoint(tp), CheckpointError, "is a directory"),
    "architecture mismatch names the entries": (
        lambda tp: load_checkpoint(_checkpoint(tp), nn.maxout_mlp(4, (6,), 2, 3)), CheckpointError,
        r"units: \[5\] in the checkpoint, \[6\] in the model.*0.weight: shape \(4, 10\) in the checkpoint, "
        r"\(4, 12\) in the model"),
    # 6. labels: never truncated or wrapped
    "float label 1.7": (lambda tp: datasets.Dataset(np.zeros((2, 3)), [0, 1.7], 3), DataError,
                        "label 1.7 at index 1 is not an integer"),
    "NaN label": (lambda tp: datasets.Dataset(np.zeros((2, 3)), [np.nan, 1], 3), DataError,
                  "label nan at index 0 is not an integer"),
    "label out of range": (lambda tp: datasets.Dataset(np.zeros((2, 3)), [0, 3], 3), DataError,
                           r"label 3 at index 1 is outside \[0, 3\)"),
    "negative label": (lambda tp: datasets.Dataset(np.zeros((2, 3)), [-1, 0], 3), DataError,
                       "label -1 at index 0"),
    "string labels": (lambda tp: datasets.Dataset(np.zeros((2, 3)), ["a", "b"], 3), DataError,
                      "labels must be integers"),
    # 8. non-finite pixels are the data's fault, named at the door (not "try a smaller learning rate")
    "NaN pixel": (lambda tp: datasets.Dataset(np.array([[0, np.nan], [0, 0]]), [0, 1], 2), DataError,
                  r"x\[0, 1\] is nan; every input must be finite"),
    "inf pixel": (lambda tp: datasets.Dataset(np.array([[0, 0], [np.inf, 0]]), [0, 1], 2), DataError,
                  r"x\[1, 0\] is inf"),
    # 9. raw tracebacks before
    "valid fraction 0.9999": (lambda tp: datasets.train_valid_split(_data(), 0.9999), InvalidArgument,
                              "both parts must be non-empty"),
    "fit on an empty dataset": (lambda tp: train.fit(_model(), train.cross_entropy_objective,
                                                     optim.SGD(_model().parameters(), lr=0.1), _data(n=0),
                                                     progress=False), DataError, "is empty"),
    "fit batch_size 0": (lambda tp: train.fit(_model(), train.cross_entropy_objective,
                                              optim.SGD(_model().parameters(), lr=0.1), _data(), batch_size=0,
                                              progress=False), InvalidArgument,
                         "fit: batch_size must be an integer >= 1, got 0"),
    "fit epochs 2.5": (lambda tp: train.fit(_model(), train.cross_entropy_objective,
                                            optim.SGD(_model().parameters(), lr=0.1), _data(), epochs=2.5,
                                            progress=False), InvalidArgument, "epochs must be an integer"),
    "fit data of another width": (lambda tp: train.fit(_model(d=5), train.cross_entropy_objective,
                                                       optim.SGD(_model(d=5).parameters(), lr=0.1), _data(d=4),
                                                       progress=False), DataError,
                                  r"the model does not take this dataset's examples \(shape \(4,\)\)"),
    "evaluate on data of another width": (lambda tp: train.evaluate(_model(d=5), _data(d=4)), DataError,
                                          "does not take"),
    "gradcheck eps 0": (lambda tp: mg.gradcheck(lambda x: x * 2, [mg.Tensor(np.ones(2), requires_grad=True)],
                                                eps=0), InvalidArgument, "gradcheck: eps must be a finite number > 0"),
    "gradgradcheck eps -1": (lambda tp: mg.gradgradcheck(lambda x: x * x, [mg.Tensor(np.ones(2), requires_grad=True)],
                                                         eps=-1), InvalidArgument, "gradgradcheck: eps must be"),
    "maxout_mlp units=240": (lambda tp: nn.maxout_mlp(units=240), InvalidArgument,
                             r"units must be a sequence of integers >= 1, e.g. \(240,\)"),
    "maxout_mlp pieces 0": (lambda tp: nn.maxout_mlp(units=(3,), pieces=0), InvalidArgument,
                            "pieces must be an integer >= 1, got 0"),
    "maxout_mlp dropout 1": (lambda tp: nn.maxout_mlp(units=(3,), hidden_dropout=1.0), InvalidArgument,
                             r"hidden_dropout must be a number in \[0, 1\)"),
    "minibatches batch_size 0": (lambda tp: datasets.minibatches(_data(), 0), InvalidArgument,
                                 "batch_size must be an integer >= 1"),
    "unknown dataset": (lambda tp: datasets.load("cifar-100"), InvalidArgument, "unknown dataset 'cifar-100'"),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_python_api_bad_input(name, tmp_path):
    call, kind, fragment = ROWS[name]
    with pytest.raises(kind, match=fragment) as e:
        call(tmp_path)
    assert isinstance(e.value, MinigradError)  # so the command line reports it in one line
    assert "pickle" not in str(e.value)


def test_idx_files_with_zero_images_are_refused(tmp_path):
    datasets.save_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((0, 5, 5), np.uint8))
    datasets.save_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    datasets.save_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 5, 5), np.uint8))
    datasets.save_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match="holds 0 images"):
        datasets.load_mnist(tmp_path)


def test_parameters_made_nan_by_the_last_update_are_never_saved(tmp_path):
    # Issue 9, case 1 through fit: the loss of every step is finite, but the last update of epoch 2
    # makes a weight NaN.  That state must not become "the last good checkpoint".
    data, model = _data(n=8), _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "c.npz"
    train.fit(model, train.cross_entropy_objective, opt, data, epochs=1, batch_size=4, checkpoint=path,
              progress=False)
    good = path.read_bytes()
    original = opt.step

    def step(grads):  # 8 examples, batch 4: step 4 is the last of epoch 2
        original(grads)
        if opt.steps == 4:
            model.parameters()[0].data[0, 0] = np.nan
    opt.step = step
    with pytest.raises(train.TrainingDiverged, match=r"parameters became NaN or inf during epoch 2.*"
                                                     r"c.npz \(end of epoch 1\)") as e:
        train.fit(model, train.cross_entropy_objective, opt, data, epochs=2, batch_size=4, checkpoint=path,
                  progress=False, resume=load_checkpoint(path, model, opt))
    assert isinstance(e.value, Diverged)
    assert path.read_bytes() == good  # the good checkpoint was not replaced


def test_a_non_finite_state_is_never_written(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "c.npz", model, epoch=1)
    good = path.read_bytes()
    model.parameters()[1].data[0] = np.inf
    with pytest.raises(Diverged, match="refusing to write"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == good and not (tmp_path / "c.prev.npz").exists()


def test_the_previous_checkpoint_is_kept(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "c.npz", model, epoch=1)
    first = path.read_bytes()
    save_checkpoint(path, model, epoch=2)
    assert (tmp_path / "c.prev.npz").read_bytes() == first
    assert load_checkpoint(path).meta["epoch"] == 2 and load_checkpoint(tmp_path / "c.prev.npz").meta["epoch"] == 1


# --- the command line: exit code and one line ---------------------------------------------------------
def _file(tmp_path):
    p = tmp_path / "a-file"
    p.write_text("x")
    return str(p)


CLI_ROWS = {
    # 2.
    "--max-col-norm inf": (["train", "--max-col-norm", "inf"], 2, "--max-col-norm: must be a finite number >= 0"),
    "--max-col-norm nan": (["train", "--max-col-norm", "nan"], 2, "--max-col-norm: must be a finite number"),
    # 3. output paths are checked before any work
    "train --out an existing file": (lambda tp: ["train", "--out", _file(tp), *TINY], 4, "exists and is not a directory"),
    "compare --out under a file": (lambda tp: ["compare", "--quick", "--out", _file(tp) + "/sub"], 4,
                                   "cannot be written to"),
    # 7.
    "compare --eps inf": (["compare", "--eps", "inf"], 2, r"--eps: must be a number in \(0, 1\]"),
    "compare --eps 0": (["compare", "--eps", "0"], 2, r"--eps: must be a number in \(0, 1\]"),
    "compare --lam-align -1": (["compare", "--lam-align", "-1"], 2, r"--lam-align: must be a finite number >= 0"),
    "compare --lam-align nan": (["compare", "--lam-align", "nan"], 2, r"--lam-align: must be a finite number >= 0"),
    "compare --eps2 nan": (["compare", "--eps2", "nan"], 2, "--eps2: must be a finite number > 0"),
    "compare --test-size 0": (["compare", "--test-size", "0"], 2, r"--test-size: must be an integer in \[1, "),
    "--epochs 1e23": (["train", "--epochs", "99999999999999999999999"], 2, r"--epochs: must be an integer in \[1, 1000000\]"),
    "a model too big for memory": (["train", "--units", "1000000", "--pieces", "1000"], 2, "would make .* parameters"),
    # 9.
    "--seed -1": (["train", "--seed", "-1"], 2, "--seed: must be an integer >= 0, got -1"),
    "--seed huge": (["train", "--seed", str(2**70)], 2, "--seed: must be an integer >= 0"),
    "--valid-fraction 0.9999": (["train", "--valid-fraction", "0.9999", *TINY], 2, "both parts must be non-empty"),
    "--valid-fraction 1": (["train", "--valid-fraction", "1"], 2, r"must be a number in \[0, 1\)"),
    "--lr inf": (["train", "--lr", "inf"], 2, "--lr: must be a finite number > 0, got inf"),
    "--lr 1e400": (["train", "--lr", "1e400"], 2, "--lr: must be a finite number > 0"),
    "--batch-size 1.5": (["train", "--batch-size", "1.5"], 2, "expected an integer, got '1.5'"),
    "--units empty": (["train", "--units"], 2, "expected at least one argument"),
    "compare --out ''": (["compare", "--out", ""], 4, "--out must name a directory, got an empty string"),
    "train --out ''": (["train", "--out", " "], 4, "--out must name a directory"),
    "--resume and --overwrite": (["train", "--resume", "--overwrite"], 2, "not allowed with argument"),
    "--resume without a run": (lambda tp: ["train", "--resume", "--out", str(tp / "new"), *TINY], 4,
                               "holds no run to continue"),
    "evaluate a damaged checkpoint": (lambda tp: ["evaluate", str(_damage("truncated")(tp))], 4,
                                      "truncated or damaged"),
    "evaluate a missing checkpoint": (lambda tp: ["evaluate", str(tp / "none.npz")], 4, "no such checkpoint file"),
    # A flag that a command offers is one it honours (sweep --arch conv now trains conv cells); one that
    # cannot apply, or a strength in the wrong units, is refused by name.
    "--momentum with adam": (lambda tp: ["compare", "--optimizer", "adam", "--momentum", "0.5", "0.6", "--out",
                                         str(tp / "c")], 2, "--momentum applies to --optimizer sgd only"),
    "--strengths plain=": (["sweep", "--strengths", "plain=0.5"], 2, "plain has no strength to sweep"),
    "--out not UTF-8": (lambda tp: ["compare", "--quick", "--out", str(tp) + "/" + os.fsdecode(b"r\xffn")], 4,
                        "is not valid UTF-8"),
    "sweep --train-size 5": (lambda tp: ["sweep", "--train-size", "5", "--out", str(tp / "s")], 2,
                             "a sweep needs at least 10 of each"),
    "train --patience without validation": (["train", "--patience", "2"], 2, "--patience needs a validation set"),
    "--strengths =0.1": (["sweep", "--strengths", "=0.1"], 2, "unknown member ''"),
    "--strengths adv-pinf=5": (["sweep", "--strengths", "adv-pinf=5"], 2, r"pixel budget in \(0, 1\]"),
    "--strengths twice": (lambda tp: ["sweep", "--strengths", "gp-q1=1", "gp-q1=2", "--out", str(tp / "s")], 2,
                          "names gp-q1 more than once"),
    "--strengths 5 for a pixel budget": (lambda tp: ["sweep", "--members", "adv-pinf", "--strengths", "5", "--out",
                                                     str(tp / "s")], 2, "whose strength is a pixel budget"),
}


def _run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CLI_ROWS))
def test_command_line_bad_input(name, tmp_path, capsys):
    argv, code, fragment = CLI_ROWS[name]
    argv = argv(tmp_path) if callable(argv) else argv
    got, err = _run_cli(argv, capsys)
    assert got == code, err
    assert "Traceback" not in err and __import__("re").search(fragment, err), err
    if code != 2:  # argparse prints usage first; ours is exactly one line
        assert len(err.strip().splitlines()) == 1, err


def test_evaluate_a_digits_checkpoint_on_other_data(tmp_path, capsys):
    # Issue 9, case 9: `evaluate --data mnist` on a digits checkpoint: one line naming the mismatch.
    for split, n in (("train", 6), ("t10k", 4)):
        datasets.save_idx(tmp_path / f"{split}-images-idx3-ubyte", np.zeros((n, 5, 5), np.uint8))
        datasets.save_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    assert cli.main(["train", "--out", str(tmp_path / "run"), *TINY]) == 0
    code, err = _run_cli(["evaluate", str(tmp_path / "run" / "checkpoint.npz"), "--data", "mnist",
                          "--data-dir", str(tmp_path)], capsys)
    assert code == 3 and "the model does not take mnist-test's examples (shape (25,))" in err, err


def test_a_run_is_never_silently_replaced(tmp_path, capsys):
    # Issue 9, case 1: a second run into the same --out is refused (files untouched) unless --resume
    # or --overwrite; a diverged --overwrite run keeps the good run under replaced/.
    out = tmp_path / "D"
    assert cli.main(["train", "--out", str(out), *TINY]) == 0
    before = {p: (out / p).read_bytes() for p in ("checkpoint.npz", "metrics.json")}
    code, err = _run_cli(["train", "--out", str(out), "--lr", "1e38", *TINY], capsys)
    assert code == 4 and "already holds a run" in err
    assert {p: (out / p).read_bytes() for p in before} == before
    code, err = _run_cli(["train", "--out", str(out), "--overwrite", "--lr", "1e38", "--max-col-norm", "0",
                          "--units", "8", "--pieces", "2", "--epochs", "2", "--quiet", "--threads", "1"], capsys)
    assert code == 5 and "no good checkpoint is on disk" in err, err
    assert {p: (out / "replaced" / p).read_bytes() for p in before} == before
    metrics = json.loads((out / "replaced" / "metrics.json").read_text())
    assert metrics["epoch"] == load_checkpoint(out / "replaced" / "checkpoint.npz").meta["epoch"] == 1


def test_a_number_meeting_an_integer_tensor_is_kept_exactly():
    # The defined result of case 5's rule: an integral value takes the Tensor's dtype unchanged.
    out = mg.Tensor(np.array([1, 2, 3])) * 2
    assert out.dtype == np.int64 and out.numpy().tolist() == [2, 4, 6]
    assert (mg.Tensor(np.array([1, 2, 3])) * 2.0).numpy().tolist() == [2, 4, 6]
    assert (mg.Tensor(np.ones(2, np.float32)) * 0.1).dtype == np.float32  # floats round, as float ops do


def test_overwriting_twice_keeps_both_earlier_runs(tmp_path, capsys):
    out = tmp_path / "D"
    for seed in ("1", "2", "3"):
        assert cli.main(["train", "--out", str(out), "--seed", seed, "--overwrite", *TINY]) == 0
    seeds = [load_checkpoint(out / d / "checkpoint.npz").meta["seed"] for d in ("replaced", "replaced-2", ".")]
    assert seeds == [1, 2, 3]


def test_ctrl_c_is_held_back_while_a_checkpoint_and_its_metrics_are_written():
    # The pair (checkpoint.npz, metrics.json) is written inside interrupts_deferred: a SIGINT that arrives
    # in between must not split them; it is raised once both are written.
    from minigrad.checkpoint import interrupts_deferred
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("checkpoint")
            done.append("metrics")
    assert done == ["checkpoint", "metrics"]


def test_max_norm_rescales_huge_finite_columns_instead_of_zeroing_them():
    w = np.full((4, 3), 1e30, np.float32)  # w·w overflows float32: the norm must not come out inf
    w[:, 2] = 0.1
    optim.max_norm_(w, 1.9365)
    norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=0))
    np.testing.assert_allclose(norms[:2], 1.9365, rtol=1e-6)
    assert np.all(w[:, 2] == np.float32(0.1))  # a short column is untouched
    k = np.full((3, 2, 2, 2), 1e30, np.float32)  # the same for conv filters (max_kernel_norm_)
    k[2] = 0.1
    optim.max_kernel_norm_(k, 0.9)
    norms = np.sqrt((k.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms[:2], 0.9, rtol=1e-6)
    assert np.all(k[2] == np.float32(0.1))
