# %% [markdown]
# # 06 · The GPU path: the same code on CuPy arrays
#
# minigrad has no GPU code of its own.  Every op asks its input arrays which library
# owns them (`minigrad.get_array_module`) and calls that library: NumPy on the host,
# CuPy on a GPU.  So a model moved with `model.to("cuda")` and batches moved with
# `minigrad.to_device(x, "cuda")` run unchanged, double backprop included.
#
# Mixing a host array with a device array is always a bug (an implicit copy, or a
# crash deep in CuPy); minigrad refuses it with a TypeError that names both arrays.
#
# Without a GPU this tutorial runs on the **strict device double**: an ndarray subclass
# that, like CuPy, refuses to meet a plain NumPy array.  It catches the same mistakes on
# a CPU, which is how minigrad's test suite checks its device code in CI.

# %%
import os
import sys
import time

import numpy as np

import minigrad as mg
from minigrad import functional as F
from minigrad import nn, plots
from minigrad.backend import cuda_available

QUICK = "--quick" in sys.argv or os.environ.get("MINIGRAD_QUICK") == "1"
FIGURES = os.environ.get("MINIGRAD_FIGURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")

if cuda_available():
    DEVICE = "cuda"
    print("CuPy sees a GPU: running on 'cuda'.")
else:
    DEVICE = "strict"
    print("No GPU (or no CuPy) here: running on the strict device double instead.\n"
          "On a machine with a GPU: pip install 'minigrad[cuda]' and this runs on CuPy.")

# %% [markdown]
# ## 1. Moving data and models

# %%
rng = np.random.default_rng(0)
x_host = rng.random((64, 784), dtype=np.float32)
y_host = rng.integers(0, 10, 64)
model = nn.maxout_mlp(784, (240, 240), 5, 10, seed=0)
model.to(DEVICE)
x = mg.to_device(x_host, DEVICE)
y = mg.to_device(y_host, DEVICE)
print("parameters on:", model.device, "  batch on:", mg.Tensor(x).device,
      "  array module:", mg.get_array_module(x).__name__)

# %% [markdown]
# ## 2. A training step and a double-backprop gradient penalty, unchanged

# %%
def penalty_objective(model, x, y, lam=0.1):
    xt = mg.Tensor(x, requires_grad=True)
    loss = F.cross_entropy(model(xt), y, reduction="sum")
    (g,) = mg.grad(loss, xt, create_graph=True)  # per-example input gradients
    return loss / len(y) + lam * (g * g).sum() / len(y)


params = model.parameters()
times = []
for step in range(3 if QUICK else 10):
    t0 = time.perf_counter()
    loss = penalty_objective(model, x, y)
    grads = mg.grad(loss, params)
    for p, g in zip(params, grads):
        p.data -= 0.05 * g.data
    times.append(time.perf_counter() - t0)
    print(f"step {step}: loss {loss.item():.4f}  ({times[-1] * 1000:.1f} ms)")
print("the gradient lives on:", grads[0].device)

# %% [markdown]
# ## 3. Results agree with the host computation
# The same weights on NumPy give the same loss (float32 rounding aside).

# %%
host_model = nn.maxout_mlp(784, (240, 240), 5, 10, seed=0)
host_model.load_state_dict(model.state_dict())  # state_dict always holds host copies
on_device = F.cross_entropy(model(mg.Tensor(x)), y).item()
on_host = F.cross_entropy(host_model(mg.Tensor(x_host)), y_host).item()
print(f"loss on {DEVICE}: {on_device:.6f}   on the host: {on_host:.6f}")
assert abs(on_device - on_host) < 1e-4

# %% [markdown]
# ## 4. Mixing host and device arrays is refused, by name

# %%
try:
    model(mg.Tensor(x_host))  # forgot to move the batch
except TypeError as e:
    print("TypeError:", e)
    print("EXPECTED FAILURE: a host batch meeting device parameters is refused")
else:
    raise AssertionError("a host array meeting device parameters should have raised TypeError")

# %% [markdown]
# ## 5. Figure: step times
# On a GPU the steps after the first are fast (the first pays for kernel compilation);
# on the strict double they are CPU times, shown only so the tutorial has the same shape.

# %%
plt = plots.pyplot()  # None, with a message, if matplotlib is not installed

if plt is not None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(times)), np.array(times) * 1000, color="tab:green")
    ax.set_xlabel("step")
    ax.set_ylabel("ms")
    ax.set_title(f"Gradient-penalty step time on '{DEVICE}' (batch 64)")
    fig.tight_layout()
    print("saved", os.path.basename(plots.save(fig, os.path.join(FIGURES, "06_step_times.png"))))
