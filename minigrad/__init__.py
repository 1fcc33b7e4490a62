"""minigrad: a small NumPy/CuPy autodiff engine with real second-order backprop,
Maxout networks, and the unified gradient regularization family of adversarial training.

    import minigrad as mg
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    (g,) = mg.grad((x ** 3).sum(), x, create_graph=True)   # 3x²
    (h,) = mg.grad(g.sum(), x)                              # 6x

Importing minigrad imports NumPy only; CuPy, matplotlib and torch are imported when used, and nothing
process-wide changes: the allocator tuning of ``keep_freed_memory`` is applied by ``train.fit`` and the
commands, where heavy work was asked for (``MINIGRAD_SYSTEM_MALLOC=1`` opts out).
"""
from . import functional, ops
from .backend import as_numpy, get_array_module, keep_freed_memory, to_device
from .diffops import grad_fn, hessian, hvp, jacobian, jvp, vjp
from .graph_drawing import draw
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor import Op, Tensor, enable_grad, grad, is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = ["Tensor", "Op", "grad", "no_grad", "enable_grad", "is_grad_enabled", "ops", "functional",
           "gradcheck", "gradgradcheck", "GradcheckError", "get_array_module", "to_device", "as_numpy",
           "vjp", "jvp", "hvp", "jacobian", "hessian", "grad_fn", "draw", "keep_freed_memory"]
