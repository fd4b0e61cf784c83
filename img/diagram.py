"""Shared drawing helpers for the diagrams in img/ (each diagram is a script beside its PNG)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

PALETTE = {"blue": "#dbe9f6", "green": "#dff0d8", "orange": "#fde5c8", "grey": "#eeeeee", "purple": "#e8def5"}


def canvas(width: float, height: float):
    """A blank figure whose data coordinates equal its size in inches."""
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def box(ax, x: float, y: float, w: float, h: float, title: str, body: str = "", color: str = "blue") -> None:
    """A rounded box with a bold title and optional smaller body text, centred at (x, y)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                                facecolor=PALETTE[color], edgecolor="#555555", linewidth=1.2))
    if body:
        ax.text(x, y + h / 2 - 0.22, title, ha="center", va="top", fontsize=10.5, fontweight="bold")
        ax.text(x, y - 0.12, body, ha="center", va="center", fontsize=8.5, linespacing=1.35)
    else:
        ax.text(x, y, title, ha="center", va="center", fontsize=10.5, fontweight="bold")


def arrow(ax, start: tuple[float, float], end: tuple[float, float], label: str = "", curve: float = 0.0) -> None:
    """An arrow from start to end, optionally curved and labelled at its middle."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.3, color="#444444",
                                 connectionstyle=f"arc3,rad={curve}"))
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, label, ha="center", va="bottom",
                fontsize=8, style="italic", color="#333333")


def save(fig, script: str) -> Path:
    """Save next to the script as <script name>.png (or into the folder given as the first argument)."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(script).resolve().parent
    path = folder / (Path(script).stem + ".png")
    fig.savefig(path, dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path
