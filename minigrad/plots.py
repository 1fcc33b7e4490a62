"""Figures for ``compare`` (matplotlib, imported only here and only when a figure is drawn)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from . import optional
from . import perturbations as P
from .backend import as_numpy, to_device

_ATTACK_TITLES = {"fgsm": "FGSM (FGM, p = ∞)", "fgm-l2": "FGM, p = 2", "pgd-linf": "PGD, p = ∞"}


def pyplot():
    """matplotlib.pyplot with a file-only backend, or None (with a message) if not installed: the one
    place this module imports matplotlib (``optional``)."""
    matplotlib = optional.maybe("matplotlib")
    if matplotlib is None:
        print("plots: matplotlib is not installed, so no figures were drawn "
              "(pip install 'minigrad[tutorials]')", file=sys.stderr)
        return None
    matplotlib.use("Agg")
    return optional.maybe("matplotlib.pyplot")


def compare_figures(results, grid, models, test_set, budgets, out) -> list:
    """Draw robustness.png, clean_vs_fgsm.png and perturbations.png; return the names written."""
    plt = pyplot()
    if plt is None:
        return []
    written = [robustness(plt, results, grid, out), clean_vs_attack(plt, results, grid, out)]
    model = models.get("plain") or next(iter(models.values()))
    written.append(worst_cases(plt, model, test_set, budgets, out))
    if any(r.get("diagnostics") for r in results):
        written.append(signals(plt, results, out))
    return written


SIGNAL_TITLES = {"cosine": "GradAlign: cos(g(x), g(x + η))", "linearity": "LLR: local linearity error γ",
                 "curvature": "CURE: top eigenvalue of the input Hessian", "fgsm_error": "FGSM error on the probe",
                 "pgd_error": "PGD error on the probe"}


def signals(plt, results, out, name: str = "signals.png") -> str:
    """The collapse signals per epoch (``diagnostics.Diagnostics``, on a fixed training probe) beside the
    training loss: one panel per signal, one line per member (colour × marker as in robustness.png)."""
    present = [r for r in results if r.get("diagnostics")]
    names = [n for n in SIGNAL_TITLES if any(n in (d or {}) for r in present for d in r["diagnostics"])]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.4), squeeze=False)
    for style, r in zip(_styles(len(present)), present):
        epochs = range(1, len(r["train_loss"]) + 1)
        axes[0][0].plot(epochs, r["train_loss"], label=r["member"], **style)
        for ax, n in zip(axes[0][1:], names):
            ax.plot(epochs, [(d or {}).get(n, float("nan")) for d in r["diagnostics"]], **style)
    losses = [v for r in present for v in r["train_loss"] if v > 0]
    if losses and max(losses) > 20 * min(losses):  # a collapse: the loss leaves its range by orders of magnitude
        axes[0][0].set_yscale("log")
    axes[0][0].set_title("training loss (nats)", fontsize=9)
    for ax, n in zip(axes[0][1:], names):
        ax.set_title(SIGNAL_TITLES[n], fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=min(6, len(present)), fontsize=8,
               bbox_to_anchor=(0.5, -0.12))
    fig.suptitle("The signals that see a collapse coming, per epoch, on a fixed training probe")
    fig.tight_layout()
    return _save(fig, out, name)


def _styles(n):
    """n styles, each a colour and a marker no other style has (18 strong colours: tab10 then Dark2;
    14 markers); beyond 14 the markers come round again, never with the same colour."""
    maps = optional.maybe("matplotlib").colormaps
    colours = [maps["tab10"](i) for i in range(10)] + [maps["Dark2"](i) for i in range(8)]
    markers = "os^Dv<>Px*hH8d"
    return [dict(color=colours[i % len(colours)], marker=markers[i % len(markers)],
                 ls="-" if i < len(colours) else "--", ms=5, lw=1.3) for i in range(n)]


def merge_identical(results: list, key) -> list:
    """Group members whose ``key(result)`` is identical: (label "a = b", first result) pairs, so an
    identical series is drawn once and named for all its members, never hidden under another."""
    groups = {}
    for r in results:
        groups.setdefault(json.dumps(key(r), sort_keys=True), []).append(r)
    return [(" = ".join(g["member"] for g in group), group[0]) for group in groups.values()]


def robustness(plt, results, grid, out) -> str:
    """Clean test error per member (its own panel, so 1 % and 2 % stay apart), then test error against
    the attack budget ε, one panel per attack, one line per member (colour and marker its own)."""
    series = merge_identical(results, lambda r: [r["clean_error"], r["attacks"]])
    styles = _styles(len(series))
    fig, axes = plt.subplots(1, len(grid) + 1, figsize=(3.9 * (len(grid) + 1), 4.2), squeeze=False,
                             gridspec_kw=dict(width_ratios=[0.8] + [1] * len(grid)))
    _clean_panel(axes[0, 0], series, styles)
    for ax, (attack, eps_list) in zip(axes[0, 1:], grid.items()):
        top = 0
        for (label, r), style in zip(series, styles):
            errors = [100 * r["clean_error"]] + [100 * r["attacks"][attack][str(e)] for e in eps_list]
            top = max(top, max(errors))
            ax.plot([0] + list(eps_list), errors, label=label + (" (unstable)" if r.get("unstable") else ""),
                    **style)
        ax.set_title(_ATTACK_TITLES.get(attack, attack))
        ax.set_xlabel("attack budget ε (0: clean)")
        ax.set_ylabel("test error (%)")
        ax.set_ylim(0, min(100, 1.08 * top + 1))  # the data's range: bundles of lines spread out
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=min(len(labels), 5), frameon=False)
    fig.suptitle("Adversarial test error against the attack budget (left: clean test error)\n"
                 "fast suite: FGSM, FGM-ℓ2 and PGD-ℓ∞ (10 steps, no restart); the strong suite's errors and masking "
                 "flags are in results.md", fontsize=10)
    fig.tight_layout()
    return _save(fig, out, "robustness.png")


def _clean_panel(ax, series, styles):
    """Clean test error per member: one marker each, in the member's style, with its value."""
    values = [100 * r["clean_error"] for _, r in series]
    for k, ((label, _), style, v) in enumerate(zip(series, styles, values)):
        ax.plot([v], [k], ls="none", marker=style["marker"], color=style["color"], ms=7)
        ax.hlines(k, 0, v, color=style["color"], lw=1, alpha=0.5)
        ax.annotate(f"{v:.2f}", (v, k), xytext=(5, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(range(len(series)), [label for label, _ in series], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3 * max(values + [0.1]))
    ax.set_xlabel("clean test error (%)")
    ax.set_title("clean (ε = 0)")
    ax.grid(axis="x", alpha=0.3)


def clean_vs_attack(plt, results, grid, out) -> str:
    """Clean error and FGSM error (middle budget) per member, side by side, each on its own axis
    and with its value, so a clean error of 0.4 % is as readable as an FGSM error of 40 %."""
    attack = "fgsm"
    eps = grid[attack][len(grid[attack]) // 2]
    names = [r["member"] for r in results]
    clean = [100 * r["clean_error"] for r in results]
    adv = [100 * r["attacks"][attack][str(eps)] for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(10, max(3.2, 0.32 * len(names) + 1.4)), sharey=True)
    pos = np.arange(len(names))
    for ax, values, colour, title in ((axes[0], clean, "tab:blue", "clean test error (%)"),
                                      (axes[1], adv, "tab:red", f"test error under FGSM, ε = {eps} (%)")):
        bars = ax.barh(pos, values, 0.7, color=colour)
        ax.bar_label(bars, [f"{v:.2f}" for v in values], padding=3, fontsize=7)
        ax.set_xlim(0, 1.2 * max(values + [0.1]))
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(pos, names, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle("Clean and adversarial test error per member (each on its own axis)")
    fig.tight_layout()
    return _save(fig, out, "clean_vs_fgsm.png")


def worst_cases(plt, model, test_set, budgets, out, n_images: int = 6, name: str = "perturbations.png") -> str:
    """The digits, then r*(p) for p = 1, 2, ∞ under the model's own input gradient."""
    model.eval()
    n_images = min(n_images, len(test_set))
    x = to_device(test_set.x[:n_images], model.device)
    y = to_device(test_set.y[:n_images], model.device)
    g = P.input_gradient(model, x, y)
    rows = [("image", as_numpy(x))]
    for key, p in (("1", 1), ("2", 2), ("inf", np.inf)):
        rows.append((f"r*, p = {key}\nε = {budgets[key]:.3g}", as_numpy(P.worst_case(g, budgets[key], p).data)))
    shape = test_set.image_shape
    fig, axes = plt.subplots(len(rows), n_images, figsize=(1.5 * n_images, 1.55 * len(rows)), squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j in range(n_images):
            ax, img = axes[i, j], _picture(images[j], shape)
            colour = img.ndim == 3
            if i == 0:
                ax.imshow(np.clip(img, 0, 1), **({} if colour else dict(cmap="gray_r", vmin=0, vmax=1)))
            else:
                m = float(np.abs(img).max()) or 1.0
                if colour:  # grey is zero; each channel's sign and size as its colour's brightness
                    ax.imshow(0.5 + img / (2 * m))
                else:
                    ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle("Closed-form worst cases r* (red raises a pixel, blue lowers it)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, name)


def _picture(example: np.ndarray, shape: tuple) -> np.ndarray:
    """One example as an image: (H, W) for grey ones, (H, W, 3) for colour (C, H, W) ones."""
    img = example.reshape(shape)
    if img.ndim == 3 and img.shape[0] == 1:
        return img[0]
    if img.ndim == 3 and img.shape[0] == 3:
        return img.transpose(1, 2, 0)
    return img


def save(fig, path: str) -> str:
    """Write ``fig`` to ``path`` (folders made as needed), close it, and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    optional.maybe("matplotlib.pyplot").close(fig)
    return path


def _save(fig, out, name) -> str:
    save(fig, os.path.join(out, name))
    return name


def pareto(points: list) -> list:
    """The (x, y) points no other point beats in both coordinates (lower is better), by x."""
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def _frontier_window(series: list) -> tuple:
    """(x limits, y limits) in percent: every point where verdicts are drawn (within the clean-error
    budget, or chosen; all points if none is), plus a margin; clean error on x, both attacks' errors on y."""
    pts = [(100 * s["clean"][i][0], 100 * s[a][i][0], s["over"][i] and i != s["chosen"]) for s in series
           for i, h in enumerate(s["health"]) if h["ok"] for a in ("fgsm", "pgd-linf")]
    inside = [(x, y) for x, y, away in pts if not away] or [(x, y) for x, y, _ in pts] or [(0.0, 0.0)]
    xs = [x for x, _ in inside]
    pad = max(1.0, 0.3 * (max(xs) - min(xs)))
    xlim = (max(0.0, min(xs) - pad), min(100.0, max(xs) + pad))
    ys = [y for x, y, _ in pts if xlim[0] <= x <= xlim[1]] or [y for _, y in inside]
    pad = max(2.0, 0.08 * (max(ys) - min(ys)))
    return xlim, (max(0.0, min(ys) - pad), min(100.0, max(ys) + pad))


def _on_axes(x, y, xlim, ylim):
    """(x, y) pulled onto the axes' edge if it lies beyond, with the marker pointing where it went
    (None if it is inside)."""
    inset_x, inset_y = 0.012 * (xlim[1] - xlim[0]), 0.02 * (ylim[1] - ylim[0])
    cx = min(max(x, xlim[0] + inset_x), xlim[1] - inset_x)
    cy = min(max(y, ylim[0] + inset_y), ylim[1] - inset_y)
    arrow = ">" if x > xlim[1] else "<" if x < xlim[0] else "^" if y > ylim[1] else "v" if y < ylim[0] else None
    return cx, cy, arrow


_FRONTIER_ATTACKS = (("pgd-linf", "PGD-ℓ∞", "tab:blue", "-"), ("fgsm", "FGSM", "tab:orange", "--"))


def frontier(plt, series: list, notes: list, budgets: dict, out, name: str = "frontier.png") -> str:
    """``sweep``'s figure, small multiples: one panel per member (identical members share one), its test
    PGD-ℓ∞ and FGSM errors against its clean test error over its strengths (means; bars ±1 standard error
    counting the seeds and the test examples, ``verdicts.summary``).  Every panel also draws plain (a star)
    and the Pareto front of every member's PGD-ℓ∞ points (grey), on one shared scale, so each reads alone.
    The axes hold the region where verdicts are drawn: every point within the clean-error budget or chosen,
    plus a margin; a point beyond it sits on the edge as an arrowhead with its values written.  Ringed: the
    strength chosen on validation (red, and said in the title, when it is an end of its grid); faded: over
    the budget on validation; hollow: a seed was unstable; a purple diamond and "+": added by extending
    the grid; a member's diverged cells are counted in its title."""
    cols = min(4, max(1, len(series)))
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.6), squeeze=False, sharex=True,
                             sharey=True)
    window = _frontier_window(series)
    plain = next((s for s in series if "plain" in s["members"] and s["health"][0]["ok"]), None)
    front = pareto([(100 * s["clean"][i][0], 100 * s["pgd-linf"][i][0]) for s in series
                    for i, h in enumerate(s["health"]) if h["ok"]])
    for ax, s in zip(axes.flat, series):
        if front:
            fx, fy = zip(*[_on_axes(x, y, *window)[:2] for x, y in front])
            ax.plot(fx, fy, color="0.6", ls=":", lw=1, drawstyle="steps-post", zorder=1)
        if plain is not None:
            px, py, _ = _on_axes(100 * plain["clean"][0][0], 100 * plain["pgd-linf"][0][0], *window)
            ax.plot(px, py, ls="none", marker="*", ms=11, color="k", zorder=4)
        _frontier_panel(ax, s, *window)
    for k, ax in enumerate(axes.flat):
        if k >= len(series):
            ax.set_visible(False)
        elif k + cols >= len(series):  # nothing drawn below it: its own x axis is labelled
            ax.set_xlabel("clean test error (%)", fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("robust test error (%)", fontsize=8)
    fig.legend(handles=_frontier_legend(plt, budgets), fontsize=7, loc="upper center", ncol=5,
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    caption = ("Each panel: one member over its strengths (numbers: its strengths), test errors, mean over seeds, "
               "bars ±1 s.e. counting seeds and test examples (each point's own: members share the test set, so "
               "their differences are surer; see verdicts.md).\nThe axes hold every point within the clean-error "
               "budget on validation or chosen, with a margin.")
    if notes:
        caption += "\nIdentical results: " + "; ".join(notes[:6])
    fig.text(0.01, -0.5 / fig.get_figheight(), caption, fontsize=7, va="top")  # below the legend's two rows
    fig.suptitle("Robust against clean test error, one member a panel, where the verdicts are drawn\n"
                 "robust: the fast suite (FGSM, PGD-ℓ∞ 10 steps); the strong suite beside it is in matched.md")
    fig.tight_layout()
    return _save(fig, out, name)


def _frontier_panel(ax, s: dict, xlim: tuple, ylim: tuple):
    """One member's series in its panel (``frontier`` says what each mark means)."""
    keep = [i for i, h in enumerate(s["health"]) if h["ok"]]
    for attack, _, colour, dash in _FRONTIER_ATTACKS:
        main = attack == "pgd-linf"
        placed = [(i, *_on_axes(100 * s["clean"][i][0], 100 * s[attack][i][0], xlim, ylim)) for i in keep]
        ax.plot([p[1] for p in placed], [p[2] for p in placed], color=colour, ls=dash, lw=1.2 if main else 0.9,
                alpha=1 if main else 0.7, zorder=2)
        for i, x, y, arrow in placed:
            faded, hollow, added = s["over"][i], s["health"][i]["unstable"], s["added"][i] and main
            ax.plot(x, y, ls="none", marker=arrow or ("D" if added else "o" if main else "s"),
                    ms=7 if added else 5 if main else 3.5, color=colour, mfc="white" if hollow else colour,
                    mec="tab:purple" if added else colour, mew=1.5 if added else 1, alpha=0.35 if faded else 1,
                    zorder=3)
            if arrow is None and main:
                ax.errorbar(x, y, xerr=100 * s["clean"][i][1], yerr=100 * s[attack][i][1], color=colour,
                            elinewidth=0.7, capsize=1.5, alpha=0.35 if faded else 0.8, zorder=2)
            right, top = x >= xlim[1] - 0.05 * (xlim[1] - xlim[0]), y >= ylim[1] - 0.1 * (ylim[1] - ylim[0])
            where = dict(xytext=(-5 if right else 4, -8 if top else 3), textcoords="offset points",
                         ha="right" if right else "left")  # kept inside the axes, off the titles
            if main and s["strengths"][i] is not None:
                value = f" ({100 * s['clean'][i][0]:.1f}, {100 * s[attack][i][0]:.1f})" if arrow else ""
                ax.annotate(("+" if added else "") + f"{s['strengths'][i]:g}{value}", (x, y), fontsize=6,
                            color="tab:purple" if added else "0.25", **where)
            elif arrow and not main:  # its clean error is the PGD-ℓ∞ point's, written there
                ax.annotate(f"{100 * s[attack][i][0]:.1f}", (x, y), fontsize=5.5, color=colour,
                            **{**where, "xytext": (where["xytext"][0], -16 if top else -7)})
    title, colour = s["label"], "k"
    if s["chosen"] is not None and s["strengths"][s["chosen"]] is not None:
        i = s["chosen"]
        x, y, _ = _on_axes(100 * s["clean"][i][0], 100 * s["pgd-linf"][i][0], xlim, ylim)
        colour = "tab:red" if s["edge"] else "k"
        ax.plot(x, y, ls="none", marker="o", ms=13, mfc="none", mec=colour, mew=1.2, zorder=6)
        title += f"\nchosen {s['strengths'][i]:g}" + (f": AT THE EDGE ({s['edge']})" if s["edge"] else "")
    failed = sum(h["failed"] for h in s["health"])
    title += f" · {failed} cells diverged" if failed else ""
    ax.set_title(title, fontsize=7.5, color=colour)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)


def _frontier_legend(plt, budgets: dict) -> list:
    """Handles naming every mark of ``frontier``."""
    def mark(label, **style):
        return plt.Line2D([], [], **{"ls": "none", "color": "tab:blue", **style}, label=label)
    return ([mark(f"{t} at ε = {budgets.get(a)}", color=c, ls=d, marker="o" if a == "pgd-linf" else "s", ms=4)
             for a, t, c, d in _FRONTIER_ATTACKS]
            + [mark("plain (PGD-ℓ∞), in every panel", marker="*", ms=10, color="k"),
               mark("Pareto front of every member (PGD-ℓ∞)", color="0.6", ls=":"),
               mark("chosen on validation", marker="o", ms=11, mfc="none", mec="k"),
               mark("chosen: at its grid's edge", marker="o", ms=11, mfc="none", mec="tab:red"),
               mark("+s: added by extending the grid", marker="D", ms=6, mec="tab:purple", mew=1.5),
               mark("over the clean budget (validation)", marker="o", alpha=0.35),
               mark("a seed was unstable", marker="o", mfc="white"),
               mark("beyond the axes: (clean, robust) written", marker=">")])


def reproduce_curve(curve: list, state: dict, out) -> str | None:
    """curve.png of a reproduce run: the training objective (and, in phase 2, the validation objective
    against its target) above; the validation error and the protocol's stopping metric (when it is another,
    e.g. the error under FGSM) below; phase 2, on train + validation, shaded; the kept epoch marked.
    None without matplotlib."""
    plt = pyplot()
    if plt is None or not curve:
        return None
    x = list(range(1, len(curve) + 1))
    n1 = sum(h.get("phase", 1) == 1 for h in curve)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
    top.plot(x, [h["train_loss"] for h in curve], color="tab:blue", marker=".", label="training objective (dropout on)")
    objectives = state.get("objectives", [])
    if objectives:
        phase2 = list(range(n1 + 1, n1 + 1 + len(objectives)))
        top.plot(phase2, objectives, color="tab:purple", marker="s", ms=4, label="validation objective (phase 2)")
        top.axhline(state["target"], color="tab:purple", ls=":", lw=1,
                    label=f"phase 2 stops at ≤ {state['target']:.3f} (kept epoch's training objective)")
    top.set_ylabel("objective (nats)")
    bottom.plot(x, [100 * h["valid_error"] for h in curve], color="tab:orange", marker=".",
                label="validation error" + (" (phase 2 trains on it)" if n1 < len(curve) else ""))
    metric = state.get("metrics", [])
    if metric and any(abs(m - h["valid_error"]) > 1e-12 for m, h in zip(metric, curve)):
        bottom.plot(range(1, len(metric) + 1), [100 * m for m in metric], color="tab:red", marker="^", ms=4,
                    label="validation error under FGSM (the stopping metric)")
    bottom.set_ylabel("error (%)")
    bottom.set_xlabel("epoch (phase 1, then phase 2 on train + validation)")
    for ax in (top, bottom):
        if n1 < len(curve):
            ax.axvspan(n1 + 0.5, len(curve) + 0.5, color="0.92", label="phase 2")
        if state.get("best_epoch"):
            ax.axvline(state["best_epoch"], color="tab:green", ls="--", lw=1, label=f"kept epoch {state['best_epoch']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    settings = state.get("settings", {})
    fig.suptitle(f"reproduce {settings.get('recipe', '')} on {settings.get('data', '')}"
                 + (f" (at most {settings['budget']} epochs a phase)" if settings.get("budget") else ""))
    return _save(fig, out, "curve.png")
