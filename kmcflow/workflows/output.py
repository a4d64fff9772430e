"""Files of one computed hop: the band (extxyz), its energy profile (PNG) and ``result.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import atomic_directory, write_json
from kmcflow.outputs import write_marker
from kmcflow.workflows.results import HopResult


def json_safe(value: Any) -> Any:
    """Numbers, lists and dicts with NaN/inf turned into None and numpy types into Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def plot_profile(energies_eV: list[float], saddle: int | None, path: Path, title: str) -> None:
    """Energy of each image relative to the initial state."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.asarray(energies_eV) - energies_eV[0]
    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=110)
    ax.plot(range(len(e)), e, "o-", color="#1f77b4")
    if saddle is not None:
        ax.plot([saddle], [e[saddle]], "s", color="#d62728", label="climbing image")
        ax.legend(fontsize=8)
    ax.set_xlabel("image")
    ax.set_ylabel("energy - E(initial) (eV)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_hop_outputs(result: HopResult, out_dir: str | Path) -> dict[str, Any]:
    """Write ``band.extxyz``, ``profile.png`` and ``result.json`` into ``out_dir``, whole.

    ``result`` is a computed one (it keeps its band); returns what ``result.json`` holds.
    """
    from ase.io import write

    if result.band is None:
        raise ValueError("write_hop_outputs needs a computed result (with its band)")
    record = json_safe(result.model_dump(mode="json"))
    energies = result.band.energies or []
    with atomic_directory(out_dir) as tmp:
        images = []
        for k, im in enumerate(result.band.atoms()):
            frame = im.copy()
            frame.calc = None
            if energies:
                frame.info["energy_eV"] = energies[k]
            images.append(frame)
        write(tmp / "band.extxyz", images, format="extxyz")
        if energies:
            fwd = record["forward_barrier_eV"]
            plot_profile(energies, result.band.saddle_index, tmp / "profile.png",
                         f"forward barrier {fwd:.3f} eV" if fwd is not None else "failed band")
        write_json(tmp / "result.json", record)
        write_marker(tmp, "barrier")
    return record
