"""Figures for ``compare`` (matplotlib, imported only here and only when a figure is drawn)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from . import perturbations as P
from .backend import as_numpy, to_device

_ATTACK_TITLES = {"fgsm": "FGSM (FGM, p = ∞)", "fgm-l2": "FGM, p = 2", "pgd-linf": "PGD, p = ∞"}


def pyplot():
    """matplotlib.pyplot with a file-only backend, or None (with a message) if not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots: matplotlib is not installed, so no figures were drawn "
              "(pip install 'minigrad[tutorials]')", file=sys.stderr)
        return None
    return plt


def compare_figures(results, grid, models, test_set, budgets, out) -> list:
    """Draw robustness.png, clean_vs_fgsm.png and perturbations.png; return the names written."""
    plt = pyplot()
    if plt is None:
        return []
    written = [robustness(plt, results, grid, out), clean_vs_attack(plt, results, grid, out)]
    model = models.get("plain") or next(iter(models.values()))
    written.append(worst_cases(plt, model, test_set, budgets, out))
    return written


def _styles(n):
    """n styles, each a colour and a marker no other style has (18 strong colours: tab10 then Dark2;
    14 markers); beyond 14 the markers come round again, never with the same colour."""
    maps = __import__("matplotlib").colormaps
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
    fig.suptitle("Adversarial test error against the attack budget (left: clean test error)")
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
    __import__("matplotlib.pyplot").pyplot.close(fig)
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


def frontier(plt, series: list, notes: list, budgets: dict, out, name: str = "frontier.png") -> str:
    """``sweep``'s figure: robust test error against clean test error over each member's strengths
    (mean over seeds, bars ±1 standard error), one panel per attack at the training budget, the Pareto
    front of all points dashed and ringed.  Hollow markers: a point with an unstable seed; a member's
    diverged points are left out and counted in its legend entry."""
    panels = (("fgsm", "FGSM"), ("pgd-linf", "PGD-ℓ∞"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), squeeze=False)
    maps = __import__("matplotlib").colormaps
    colours = [maps["tab10"](i) for i in range(10)] + [maps["Dark2"](i) for i in range(8)]
    markers = "os^Dv<>Px*hH8d"
    styles = [dict(color=colours[i % 18], marker=markers[i % len(markers)], ls="-" if i < 10 else "--", ms=5, lw=1.2)
              for i in range(len(series))]  # 18 strong colours, 14 markers, two line styles: 16 members stay apart
    for ax, (attack, title) in zip(axes[0], panels):
        everything = []
        for s, style in zip(series, styles):
            keep = [i for i, h in enumerate(s["health"]) if h["ok"]]
            x = [100 * s["clean"][i][0] for i in keep]
            y = [100 * s[attack][i][0] for i in keep]
            everything += list(zip(x, y))
            failed = sum(h["failed"] for h in s["health"])
            label = s["label"] + (f" ({failed} cells diverged)" if failed else "")
            if s["strengths"] and s["strengths"][0] is None:  # no knob: one point, a star
                style = {**style, "marker": "*", "ms": 11}
            ax.errorbar(x, y, xerr=[100 * s["clean"][i][1] for i in keep], yerr=[100 * s[attack][i][1] for i in keep],
                        label=label, capsize=2, elinewidth=0.8, **style)
            ends = [keep[0], keep[-1]] if keep and s["strengths"][0] is not None else []
            for i in dict.fromkeys(ends):  # the weakest and strongest strength beside their points
                ax.annotate(f"{s['strengths'][i]:g}", (x[keep.index(i)], y[keep.index(i)]), fontsize=5.5,
                            color=style["color"], xytext=(3, 3), textcoords="offset points")
            hollow = [i for i, h in enumerate(s["health"]) if h["unstable"] and h["ok"]]
            ax.plot([100 * s["clean"][i][0] for i in hollow], [100 * s[attack][i][0] for i in hollow], ls="none",
                    marker=style["marker"], ms=9, mfc="white", mec=style["color"], mew=1.5)
        front = pareto(everything)
        if front:
            fx, fy = zip(*front)
            ax.plot(fx, fy, "k--", lw=1, drawstyle="steps-post", label="Pareto front" if attack == "fgsm" else None)
            ax.plot(fx, fy, ls="none", marker="o", ms=12, mfc="none", mec="k", mew=0.8)
        xs = [x for x, _ in everything]
        if xs and min(xs) > 0 and max(xs) / min(xs) > 4:  # logarithmic: 1 % and 60 % both readable
            ax.set_xscale("log")
            ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
            ax.set_xticks([t for t in (0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 50, 100)
                           if min(xs) / 1.3 <= t <= max(xs) * 1.3])
            ax.xaxis.set_major_formatter(__import__("matplotlib").ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(__import__("matplotlib").ticker.NullFormatter())
        ax.set_xlabel("clean test error (%, log scale)" if ax.get_xscale() == "log" else "clean test error (%)")
        ax.set_ylabel(f"{title} test error at ε = {budgets.get(attack)} (%)")
        ax.set_title(f"{title} (ε = {budgets.get(attack)}) against clean error")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    caption = ("Each line: one member over its strengths (numbers: its weakest and strongest strength; "
               "mean over seeds, bars ±1 s.e.); "
               "hollow: a seed was unstable; ringed and dashed: the Pareto front (lower left is better).")
    if notes:
        caption += "\nIdentical results: " + "; ".join(notes[:6])
    fig.text(0.01, -0.02, caption, fontsize=7, va="top")
    fig.suptitle("Robust against clean test error, every member over its strengths")
    fig.tight_layout()
    return _save(fig, out, name)
