"""Side view of an interface slab: atoms coloured by host phase, fixed atoms marked."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kmcflow.atomic_io import atomic_path
from kmcflow.structures.geometry import plane_normal
from kmcflow.structures.io import HOST, LabelledStructure

_HOST_COLOURS = ("#1f77b4", "#d62728")


def plot_side_view(labelled: LabelledStructure, path: str | os.PathLike[str]) -> Path:
    """Write a PNG: atoms projected on (a1, normal), two in-plane repeats, planes dashed.

    Marker size follows the element (anions smaller than cations is not assumed: one size per
    element, by atomic radius); filled markers are free atoms, hollow ones fixed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pymatgen.core import Element

    s = labelled.structure
    matrix = s.lattice.matrix
    n = plane_normal(matrix)
    ex = matrix[0] - (matrix[0] @ n) * n
    ex /= np.linalg.norm(ex)
    hosts = list(s.site_properties[HOST])
    names = list(dict.fromkeys(labelled.interface.hosts if labelled.interface else hosts))
    fixed = [not all(f) for f in s.site_properties.get("selective_dynamics",
                                                        [[True] * 3] * len(s))]
    heights = s.cart_coords @ n
    xs = s.cart_coords @ ex
    fig, ax = plt.subplots(figsize=(6.0, 7.0), dpi=110)
    width = float(abs(matrix[0] @ ex))
    for rep in (0, 1):
        for k, site in enumerate(s):
            el = site.specie.symbol if hasattr(site.specie, "symbol") else site.species_string
            radius = Element(el).atomic_radius or 1.0
            colour = _HOST_COLOURS[names.index(hosts[k]) % 2] if hosts[k] in names else "grey"
            ax.scatter(xs[k] + rep * width, heights[k], s=60 * float(radius) ** 2,
                       facecolors="none" if fixed[k] else colour, edgecolors=colour,
                       linewidths=1.2, zorder=3)
    if labelled.interface is not None:
        for h in labelled.interface.plane_heights_A:
            ax.axhline(h, ls="--", lw=0.8, color="k")
    for k, name in enumerate(names):
        ax.scatter([], [], color=_HOST_COLOURS[k % 2], label=name)
    if any(fixed):
        ax.scatter([], [], facecolors="none", edgecolors="k", label="fixed")
    ax.set_xlabel("in-plane position along a1 (Angstrom)")
    ax.set_ylabel("height along the interface normal (Angstrom)")
    ax.set_title(f"{labelled.name}: {len(s)} atoms")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
