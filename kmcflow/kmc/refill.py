"""Which cached hop rates a hop changes: the kernel's work list after each event.

With pair interactions or an environment catalog the rate of a hop ``n -> m`` reads the
occupation of ``n`` and of the neighbours of ``m`` and of ``n``, so after the atom on ``j``
moved to ``v`` every hop that reads ``v`` or ``j`` is re-rated (:func:`collect_work`). The
search for them is cut by a per-site count of vacant neighbours
(:func:`count_vacant_neighbours`) that :func:`kmcflow.kmc.kernels.run_events` keeps.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def _is_neighbour(a: int, b: int, site_class, offsets) -> bool:
    """Whether site ``b`` is a nearest neighbour of site ``a``."""
    ca = site_class[a]
    for k in range(offsets.shape[1]):
        off = offsets[ca, k]
        if off != 0 and a + off == b:
            return True
    return False


@njit(cache=True)
def count_vacant_neighbours(vac_site, n_sites: int, site_class, offsets) -> np.ndarray:
    """How many neighbours of each site are vacancies (int8, one per site), from ``vac_site``."""
    count = np.zeros(n_sites, np.int8)
    for q in range(vac_site.shape[0]):
        v = vac_site[q]
        cv = site_class[v]
        for k in range(offsets.shape[1]):
            off = offsets[cv, k]
            if off != 0:
                count[v + off] += 1
    return count


@njit(cache=True)
def collect_work(v: int, j: int, q: int, work, vac_of_site, reverse_slot, class_basis, occ,
                 site_class, offsets, vacant_nbrs) -> int:
    """List the hops whose rate reads ``v`` or ``j`` after the atom on ``j`` moved to ``v``.

    A hop ``n -> m`` (vacancy ``m``) reads the occupation of ``n`` and of the neighbours of
    ``m`` and of ``n`` (environment, pair bonds). So the work list (rows as in
    :func:`fill_work`; returns their number) has every hop into the moved vacancy ``q`` (now at
    ``j``) and into a vacancy next to ``v`` or ``j`` (once), and of a vacancy further away the
    hop from each atom next to ``v`` or ``j`` (once: from ``v`` if next to both).
    ``vacant_nbrs[n]``: the vacancies next to ``n`` other than ``j``
    (:func:`count_vacant_neighbours` less the hop's change); the neighbours of an atom ``n``
    are searched only if it is not 0 (with a count of at least 1 everywhere, always: the
    reference; the counts skip 9 of 10 searches, a third of an event's time).
    """
    work[0, 0], work[0, 1], work[0, 2] = q, j, -1
    n_work = 1
    zmax = offsets.shape[1]
    for centre in (v, j):
        cc = site_class[centre]
        for k in range(zmax):
            off = offsets[cc, k]
            m = centre + off
            if off == 0 or occ[m] != 0 or m == j:
                continue
            u = vac_of_site[m]
            seen = False
            for i in range(1, n_work):
                seen = seen or work[i, 0] == u
            if not seen:
                work[n_work, 0], work[n_work, 1], work[n_work, 2] = u, m, -1
                n_work += 1
    n_full = n_work
    for centre in (v, j):
        cc = site_class[centre]
        for k in range(zmax):
            off = offsets[cc, k]
            n = centre + off
            if off == 0 or occ[n] == 0 or vacant_nbrs[n] == 0:  # a hop from a vacancy stays 0
                continue
            cn = site_class[n]
            for k2 in range(zmax):
                off2 = offsets[cn, k2]
                m = n + off2
                if off2 == 0 or occ[m] != 0 or m == j:
                    continue
                u = vac_of_site[m]
                seen = centre == j and _is_neighbour(v, n, site_class, offsets)
                for i in range(1, n_full):
                    seen = seen or work[i, 0] == u
                if not seen:
                    work[n_work, 0], work[n_work, 1] = u, m
                    work[n_work, 2] = reverse_slot[class_basis[cn], k2]
                    n_work += 1
    return n_work
