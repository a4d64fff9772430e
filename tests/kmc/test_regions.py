"""Regions: interface bands, event-key fallback to hosts, and general lattices."""

from __future__ import annotations

import numpy as np
import pytest

from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.lattice import build_block, general, nearest_neighbours
from kmcflow.kmc.validate import uniform_catalog


def _with_band(band_A: float, extra_events: list[dict]) -> Catalog:
    data = uniform_catalog("sc").to_json_dict()
    data["interface"]["band_thickness_A"] = band_A
    data["events"] += extra_events
    return Catalog.model_validate(data)


def test_band_sites_and_host_fallback():
    # sc, a = 1: layers at z = 0..11, interfaces at 5.5 and 11.5; a 1.0 Angstrom band takes
    # the layer on each side of each interface (0.5 Angstrom away; the next is 1.5 away)
    band_event = {"id": "A_band", "species": "A", "initial_region": "A_host:interface",
                  "final_region": "B_host:interface", "barrier_eV": 0.7, "prefactor_Hz": 1e13,
                  "provenance": {"source": "test"}}
    reverse = {**band_event, "id": "A_band_rev", "initial_region": "B_host:interface",
               "final_region": "A_host:interface"}
    cat = _with_band(1.0, [band_event, reverse])
    sim = Simulation(cat, (4, 4, 12), 600.0, 0.05, seed=1)
    regions = cat.region_names
    layer_region = sim.region.reshape(4, 4, 12)[0, 0]
    names = [regions[r] for r in layer_region]
    a, b = "A_host", "B_host"
    assert names == [f"{a}:interface", a, a, a, a, f"{a}:interface",
                     f"{b}:interface", b, b, b, b, f"{b}:interface"]
    r = sim.rates
    a_band, b_band, a_host = (regions.index(n) for n in
                              ("A_host:interface", "B_host:interface", "A_host"))
    assert r.barrier_eV[1, a_band, b_band] == pytest.approx(0.7)  # the specific event wins
    assert r.barrier_eV[1, a_host, a_band] == pytest.approx(0.5)  # host-keyed event covers it
    assert r.barrier_eV[2, a_band, b_band] == pytest.approx(0.5)
    sim.run(20_000)
    assert sim.event_counts[1, a_band, b_band] > 0


def test_general_lattice_equals_the_preset():
    lat = general([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]], [[0, 0, 0], [0.5, 0.5, 0.5]])
    shell = nearest_neighbours(lat)
    assert set(shell.coordination.tolist()) == {8}
    assert shell.distance_A == pytest.approx(3**0.5)
    block = build_block(lat, (3, 3, 4))
    assert block.n_layers == 8 and np.allclose(np.diff(block.layer_z_A), 1.0)
