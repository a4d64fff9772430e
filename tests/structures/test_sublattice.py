"""The kMC lattice from a structure, checked by building it with the engine's lattice code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kmcflow.kmc import lattice as kmc_lat
from kmcflow.kmc.catalog import validate_catalog_data
from kmcflow.structures.hops import enumerate_hops
from kmcflow.structures.interface import build_interface, find_matches
from kmcflow.structures.sublattice import catalog_sections, kmc_lattice


def definition(spec):
    if "preset" in spec:
        return kmc_lat.preset(spec["preset"], spec["a_A"])
    return kmc_lat.general(spec["vectors_A"], spec["basis_frac"])


@pytest.mark.parametrize(("name", "species", "expected"), [
    ("MgO", ["Mg"], {"preset": "fcc", "a_A": 4.2117}),
    ("Fe", ["Fe"], {"preset": "bcc", "a_A": 2.8665}),
    ("Li2O", ["Li"], {"preset": "sc", "a_A": 2.305}),
])
def test_cubic_bulk_gives_the_preset(bulk, name, species, expected):
    assert kmc_lattice(bulk(name), species) == expected


def test_layered_li_sublattice_is_a_general_lattice_with_six_in_plane_neighbours(bulk):
    spec = kmc_lattice(bulk("LiCoO2"), ["Li"])
    assert "vectors_A" in spec and len(spec["basis_frac"]) == 3
    shell = kmc_lat.nearest_neighbours(definition(spec))
    assert shell.distance_A == pytest.approx(2.8156, abs=1e-5)
    assert list(shell.coordination) == [6, 6, 6]
    assert np.allclose(shell.vector_A[..., 2][shell.basis >= 0], 0.0, atol=1e-6)


def test_cu_ni_100_interface_gives_the_substrate_fcc_preset(cu_ni_slab):
    sections = catalog_sections(cu_ni_slab, ["Cu", "Ni"], band_thickness_A=2.0)
    assert sections["lattice"] == {"preset": "fcc", "a_A": 3.52387}
    assert sections["hosts"] == [{"name": "Ni", "initial_species": "Ni"},
                                 {"name": "Cu", "initial_species": "Cu"}]
    assert sections["interface"] == {"boundary_z": "closed", "first_host_fraction": 0.5,
                                     "band_thickness_A": 2.0}


def test_cu_ni_111_interface_gives_an_fcc_111_general_lattice(bulk):
    search = find_matches(bulk("Cu"), bulk("Ni"), (1, 1, 1), (1, 1, 1))
    iface = build_interface(search, vacuum_A=0.0)
    spec = catalog_sections(iface, ["Cu", "Ni"])["lattice"]
    assert "vectors_A" in spec  # (111) normal: not the [001]-stacked preset
    d = definition(spec)
    shell = kmc_lat.nearest_neighbours(d)
    assert shell.distance_A == pytest.approx(3.52387 / math.sqrt(2), abs=1e-4)
    assert list(shell.coordination) == [12] * d.n_basis
    # the layer spacing along z is d_111 = a / sqrt3
    per_layer = d.vectors_A[2, 2] / len({round(z, 4) for z in (d.basis_frac @ d.vectors_A)[:, 2]})
    assert per_layer == pytest.approx(3.52387 / math.sqrt(3), abs=1e-4)
    # the volume per site is that of fcc, a^3 / 4
    volume = abs(np.linalg.det(d.vectors_A)) / d.n_basis
    assert volume == pytest.approx(3.52387 ** 3 / 4, rel=1e-5)


def test_sections_and_hop_keys_make_a_valid_catalog(cu_ni_slab):
    band = 2.0
    sections = catalog_sections(cu_ni_slab, ["Cu", "Ni"], band_thickness_A=band)
    hops = enumerate_hops(cu_ni_slab, ["Cu", "Ni"], band_thickness_A=band)
    keys = sorted({(h.species, h.initial_region, h.final_region) for h in hops.hops})
    events = [{"id": f"e{k}", "species": sp, "initial_region": a, "final_region": b,
               "barrier_eV": 0.8, "prefactor_Hz": 1e13, "provenance": {"source": "test"}}
              for k, (sp, a, b) in enumerate(keys)]
    data = {"schema": "kmcflow.catalog", "schema_version": 1, "name": "cu_ni",
            "units": {}, "rate_model": "table", "events": events, **sections}
    catalog, problems = validate_catalog_data(data)
    assert catalog is not None
    assert [p for p in problems if p.severity == "error"] == []
    assert set(catalog.region_names) == {"Ni", "Cu", "Ni:interface", "Cu:interface"}


@pytest.mark.parametrize(("film", "sub", "miller", "coordination", "nn"), [
    ("Cu", "Ni", (1, 1, 0), 12, 3.52387 / math.sqrt(2)),  # one step leaves neighbours 2 cells up
    ("Fe", "Fe", (1, 1, 1), 8, 2.8665 * math.sqrt(3) / 2),  # [111] neighbours 3 layers up
])
def test_open_planes_give_a_lattice_with_the_full_coordination(bulk, film, sub, miller,
                                                               coordination, nn):
    iface = build_interface(find_matches(bulk(film), bulk(sub), miller, miller))
    spec = catalog_sections(iface, sorted({film, sub}))["lattice"]
    shell = kmc_lat.nearest_neighbours(definition(spec))
    assert set(shell.coordination.tolist()) == {coordination}
    assert shell.distance_A == pytest.approx(nn, abs=1e-4)
