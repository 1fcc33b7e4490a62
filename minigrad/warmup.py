"""A warm-up of a member's weight: train on the plain loss first, then move to the member over E epochs.

The remedy the literature proposes for a gradient penalty that collapses mid-run (Zhao et al. 2024 for
parameter-gradient penalties; ELLE, Abad Rocamora et al. 2024, raises its weight on a trigger instead):
do not apply the full penalty to an untrained network.  ``WarmUp(member, E)`` is an objective for every
member of ``members.MEMBERS``::

    objective = WarmUp(member("gp-q1", model, strengths), epochs=5)
    fit(model, objective, optimizer, train, epochs=30)       # fit tells it the epoch

Its loss at epoch e is (1 − t)·L(x) + t·L_member(x) with t = min((e − 1)/E, 1): the plain loss at epoch 1,
the member from epoch E + 1 on.  For an additive member L + λ·P that is exactly λ ramped (t·λ); for
Goodfellow's adversarial training α·L(x) + (1 − α)·L(x + δ) it ramps the perturbed term's weight from 0 to
1 − α.  The schedule is set by the hook ``Objective.start_epoch(epoch, history)``, which ``train.fit``
calls before each epoch, so it depends on the epoch alone and a resumed run is the run that never stopped.
"""
from __future__ import annotations

from . import validate
from .errors import InvalidArgument
from .objective import Objective, data_loss


class WarmUp(Objective):
    r"""The member's weight ramped in linearly over the first ``epochs`` epochs:

        L_t(θ) = (1 − t)·L(x) + t·L_member(x),    t = min((e − 1)/E, 1) at epoch e = 1, 2, …

    .. math::

       L_t(\theta) = (1 - t)\,L(x) + t\,L_{\mathrm{member}}(x), \qquad t = \min\Bigl(\frac{e - 1}{E}, 1\Bigr).

    Its parameter gradient is (1 − t)·∇θL + t·∇θL_member, so the member's training direction (with its
    stop-gradient quantities, ``frozen``) is ramped in with it.  At t = 0 only the plain loss is computed
    and at t = 1 only the member (bit for bit the member alone): a warm-up costs nothing outside the ramp;
    inside it the clean forward pass is made twice for members that make one themselves.

    ``member``: a full objective (one that includes the data loss; every member of ``members.MEMBERS`` is);
    ``epochs``: E >= 0 (0: no warm-up, t = 1 throughout).  A fresh WarmUp is at epoch 1 (t = 0) until
    ``start_epoch`` says otherwise; ``train.fit`` calls it before every epoch and records t in the
    history as ``record["schedule"]["warmup"]``."""

    includes_data_loss = True

    def __init__(self, member: Objective, epochs: int):
        if not isinstance(member, Objective):
            raise InvalidArgument(f"WarmUp: member must be an Objective (members.member(...)), got {member!r:.80}")
        if not member.includes_data_loss:
            raise InvalidArgument(f"WarmUp: member must be a full objective that includes the data loss, got "
                                  f"{member!r} (a term alone: add it to CrossEntropy() first)")
        if isinstance(member, WarmUp):
            raise InvalidArgument(f"WarmUp: {member!r} is warmed up already; wrap the member itself once")
        self.member = member
        self.epochs = validate.integer(epochs, "epochs", "WarmUp", low=0)
        self.t = self.weight(1)

    name = property(lambda self: self.member.name)  # still the member: tables and plots keep its name

    def __repr__(self):
        return f"{self.member!r} warmed up over {self.epochs} epochs"

    def weight(self, epoch: int) -> float:
        """t at epoch ``epoch`` (1, 2, …): min((epoch − 1)/E, 1), and 1 when E = 0."""
        epoch = validate.integer(epoch, "epoch", "WarmUp.weight", low=1)
        return min((epoch - 1) / self.epochs, 1.0) if self.epochs else 1.0

    def start_epoch(self, epoch, history):
        inner = self.member.start_epoch(epoch, history) or {}
        self.t = self.weight(epoch)
        return {**inner, "warmup": self.t}

    def __call__(self, model, x, y):
        t = self.t
        if t == 1:
            return self.member(model, x, y)
        plain = data_loss(model, x, y)  # the plain member, CrossEntropy, computes exactly this
        if t == 0:
            return plain
        return plain * (1 - t) + self.member(model, x, y) * t

    def parameters(self):
        return self.member.parameters()

    def frozen(self, model, x, y):
        held = WarmUp(self.member.frozen(model, x, y), self.epochs)
        held.t = self.t
        return held


__all__ = ["WarmUp"]
