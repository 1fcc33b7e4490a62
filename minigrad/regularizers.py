"""The regularizer family: training objectives whose parameter gradient is the update.

Every member is an ``Objective``: a callable ``objective(model, x, y) -> loss Tensor``
(x: a raw array or constant Tensor on the model's device, floating point; y: integer
labels).  **The gradient of the returned loss with respect to the parameters is the
training direction**; for members that hold something constant (a perturbation, a
target distribution) the loss *value* is a surrogate whose θ-derivative, with those
quantities stopped, is that direction.  L is the batch mean of the per-example
cross-entropy; gᵢ = ∇ₓᵢLᵢ is each example's own input gradient (from the *summed*
loss, science page §1), so every norm below is per example and every batch objective is
a mean over examples.

Full objectives include the data loss L and can be trained alone; *terms* are meant to
be added to one (``CrossEntropy() + WeightDecay(l2=1e-4)``).  The members live by how each is
computed (their objectives, as formulas, are in each class and in the README's family tables):

- the data loss and the terms a forward pass gives (``terms.py``): ``CrossEntropy`` ('plain'),
  ``WeightDecay`` ('l1', 'l2'), ``Multitask`` ('multitask');
- the explicit penalty, trained exactly by double backprop (``penalties.py``): ``InputGradientPenalty``
  under its paper names ``GradientPenalty`` ('gp-q1', 'gp-q2'), ``DataGrad`` ('datagrad-l1',
  'datagrad-l2') and ``DoubleBackprop`` ('double-backprop'); the neighbours ``JacobianPenalty``
  ('jacreg'), ``SpectralPenalty`` ('spectreg') and ``WassersteinPenalty`` ('wasserstein-p1', '-p2');
- the perturbed point, a loss at x + δ with δ held constant (``adversarial.py``): ``AdversarialTraining``
  ('adv-p1', 'adv-p2', 'adv-pinf'), ``DataGradFD`` ('datagrad-l1-fd', 'datagrad-l2-fd'),
  ``VirtualAdversarial`` ('vat', a term), and the successors ``TRADES`` ('trades'), ``FGSMRandomStart``
  ('fgsm-rs'), ``NFGSM`` ('n-fgsm') and ``GradientPenaltyFD`` ('gp-fd');
- curvature penalties, by double backprop (``curvature.py``): the successors ``GradAlign`` ('gradalign'),
  ``CURE`` ('cure') and ``LocalLinearity`` ('llr').

benchmarks/README.md counts the matrix products each one costs per step.

Each object's ``name`` is its canonical member name (``members.MEMBERS``: the names of compare,
the CLI, tables, plots and the benchmark); its repr adds the strengths: ``adv-pinf(eps=0.1)``.
``members.member(name, model, strengths)`` builds each named member as compare trains it.

Members compose: ``A + B`` is their sum (losses add, so gradients add), ``c * A`` weights
one by a constant c ≥ 0, and ``sum([...])`` works.  Adding two full objectives counts the
data loss twice, which is allowed (it is a different weighting), not an error.

Extra trainable parameters (Multitask's decoder) belong to the objective, not the
model, so an optimizer must update ``model.parameters() + objective.parameters()``.
``objective.parameters()`` is empty for every other member and is collected through
sums.

For gradient checks, ``objective.frozen(model, x, y)`` returns the objective with every
stopped quantity computed once, at the current θ, and then held fixed: as a function
of θ its value has exactly the gradient the objective trains with at this θ (members
that stop nothing return themselves).  Perturbed-point members also expose
``perturbation(model, x, y)`` (the offset δ added to x) and ``loss_at(model, x, y, δ)``.
"""
from __future__ import annotations

from .adversarial import (TRADES, AdversarialTraining, DataGradFD, FGSMRandomStart, GradientPenaltyFD, NFGSM,
                          PerturbedPoint, RandomStartFGSM, VirtualAdversarial)
from .curvature import CURE, GradAlign, LocalLinearity
from .objective import Combined, Objective, Scaled
from .penalties import (DataGrad, DoubleBackprop, GradientPenalty, InputGradientPenalty, JacobianPenalty,
                        SpectralPenalty, WassersteinPenalty)
from .terms import CrossEntropy, Multitask, WeightDecay

__all__ = ["Objective", "Combined", "Scaled", "CrossEntropy", "WeightDecay", "InputGradientPenalty",
           "GradientPenalty", "DataGrad", "DoubleBackprop", "PerturbedPoint", "AdversarialTraining", "DataGradFD",
           "Multitask", "VirtualAdversarial", "JacobianPenalty", "SpectralPenalty", "WassersteinPenalty",
           "TRADES", "RandomStartFGSM", "FGSMRandomStart", "NFGSM", "GradientPenaltyFD", "GradAlign", "CURE",
           "LocalLinearity"]
