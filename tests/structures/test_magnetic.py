"""The type-II antiferromagnetic cell of a rock-salt oxide: geometry and magnetic order."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymatgen", reason="needs the structures extra")

from kmcflow.errors import StructureError
from kmcflow.structures.bulk import bundled_structure
from kmcflow.structures.magnetic import rocksalt_afm_111


def test_afm_ii_nio_has_rocksalt_distances_and_antiparallel_180_degree_neighbours():
    bulk = bundled_structure("NiO")
    a = bulk.lattice.a
    cell = rocksalt_afm_111(bulk, 2.0)
    assert len(cell) == 4 and cell.volume == pytest.approx(bulk.volume / 2, rel=1e-9)
    assert cell.composition.reduced_formula == "NiO"
    big = cell * (3, 3, 3)
    moments = np.array(big.site_properties["magmom"])
    ni = [i for i, s in enumerate(big) if s.specie.symbol == "Ni"]
    assert moments[ni].sum() == 0 and set(moments[ni]) == {2.0, -2.0}
    for i in ni[:4]:
        nbrs = big.get_neighbors(big[i], a + 0.05)
        nn = [n for n in nbrs if n.specie.symbol == "O" and n.nn_distance < 0.6 * a]
        assert len(nn) == 6 and all(n.nn_distance == pytest.approx(a / 2, abs=1e-6) for n in nn)
        near = [n for n in nbrs if n.specie.symbol == "Ni" and n.nn_distance < 0.8 * a]
        far = [n for n in nbrs if n.specie.symbol == "Ni" and n.nn_distance > 0.9 * a]
        assert len(near) == 12 and len(far) == 6
        # AFM-II: the six Ni across an O at 180 degrees are all antiparallel, the twelve
        # nearest Ni split six parallel, six antiparallel
        assert all(n.properties["magmom"] == -moments[i] for n in far)
        assert sum(n.properties["magmom"] == moments[i] for n in near) == 6


def test_afm_cell_refuses_a_crystal_that_is_not_rock_salt():
    with pytest.raises(StructureError, match="rock-salt"):
        rocksalt_afm_111(bundled_structure("Cu"))
