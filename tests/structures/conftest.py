"""Fixtures of the structure tests: bulk crystals and interfaces built once per session."""

from __future__ import annotations

import pytest

pytest.importorskip("pymatgen.core", reason="needs the structures extra")
pytest.importorskip("spglib", reason="needs the structures extra")

from kmcflow.structures.interface import build_interface, find_matches
from kmcflow.structures.io import read_structure


@pytest.fixture(scope="session")
def bulk():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = read_structure(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def cu_ni_search(bulk):
    return find_matches(bulk("Cu"), bulk("Ni"), (1, 0, 0), (1, 0, 0))


@pytest.fixture(scope="session")
def cu_ni_slab(cu_ni_search):
    return build_interface(cu_ni_search)


@pytest.fixture(scope="session")
def mgo_nio_search(bulk):
    return find_matches(bulk("MgO"), bulk("NiO"), (1, 0, 0), (1, 0, 0))
