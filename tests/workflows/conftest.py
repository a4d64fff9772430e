"""Fixtures of the workflow tests: the ASE Au/Al(100) tutorial endpoints, a Cu vacancy hop."""

from __future__ import annotations

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("atomate2", reason="needs the workflows extra")


@pytest.fixture(scope="session")
def au_al_endpoints():
    """ASE's NEB tutorial: an Au adatom hopping between hollow sites of Al(100) (0.374 eV)."""
    from kmcflow.workflows.reference_hops import au_on_al100

    return au_on_al100()


@pytest.fixture(scope="session")
def cu_vacancy_endpoints():
    """A Cu vacancy hop in a 2x2x2 conventional supercell (31 atoms), from the hop tools."""
    from kmcflow.workflows.reference_hops import bulk_vacancy_hop

    return bulk_vacancy_hop("Cu", "Cu", 7.0)
