"""Numba kernels of the ghost exchanges: pack and unpack site records, refresh the vacancy list.

A site record is 8 bytes: the species code (int8), the basis index the atom had at t = 0
(uint8) and its displacement in cells (3 x int16, little-endian as the arrays are). Reverse
messages carry a ninth byte: 1 where the site differs from its state at the start of the window.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kmcflow.kmc import kernels

SITE_BYTES = 8


@njit(cache=True)
def _record(occ, basis0, disp, i, out, row) -> None:
    out[row, 0] = np.uint8(occ[i] & 0xFF)
    out[row, 1] = basis0[i]
    for a in range(3):
        v = np.uint16(disp[i, a])
        out[row, 2 + 2 * a] = np.uint8(v & 0xFF)
        out[row, 3 + 2 * a] = np.uint8(v >> 8)


@njit(cache=True)
def pack(occ, basis0, disp, idx, out) -> None:
    """Write the records of sites ``idx`` into the rows of ``out`` (n, >= 8) uint8."""
    for row in range(idx.shape[0]):
        _record(occ, basis0, disp, idx[row], out, row)


@njit(cache=True)
def pack_changes(occ, basis0, disp, idx, before, out) -> int:
    """Pack sites ``idx`` into ``out`` (n, 9) with byte 8 = changed since ``before``; count them."""
    n_changed = 0
    for row in range(idx.shape[0]):
        _record(occ, basis0, disp, idx[row], out, row)
        changed = 0
        for c in range(SITE_BYTES):
            if out[row, c] != before[row, c]:
                changed = 1
        out[row, SITE_BYTES] = changed
        n_changed += changed
    return n_changed


@njit(cache=True)
def unpack(buf, idx, occ, basis0, disp, only_changed: bool) -> int:
    """Store the records of ``buf`` at sites ``idx`` (only flagged rows if ``only_changed``)."""
    n = 0
    for row in range(idx.shape[0]):
        if only_changed and buf[row, SITE_BYTES] == 0:
            continue
        i = idx[row]
        occ[i] = np.int8(buf[row, 0])
        basis0[i] = buf[row, 1]
        for a in range(3):
            disp[i, a] = np.int16(np.uint16(buf[row, 2 + 2 * a])
                                  | (np.uint16(buf[row, 3 + 2 * a]) << np.uint16(8)))
        n += 1
    return n


@njit(cache=True)
def differs(occ, basis0, disp, idx, snapshot) -> bool:
    """Whether any site of ``idx`` differs from its packed record in ``snapshot``."""
    row_buf = np.empty((1, SITE_BYTES), np.uint8)
    for row in range(idx.shape[0]):
        _record(occ, basis0, disp, idx[row], row_buf, 0)
        for c in range(SITE_BYTES):
            if row_buf[0, c] != snapshot[row, c]:
                return True
    return False


@njit(cache=True)
def refresh_vacancies(occ, vac_site, vac_of_site, candidates) -> np.ndarray:
    """Return the vacancy list after exchanges changed some ``candidates`` sites.

    Keeps the surviving vacancies in their order, appends new ones from ``candidates`` (in
    their order, each once) and rewrites ``vac_of_site``.
    """
    out = np.empty(vac_site.shape[0] + candidates.shape[0], np.int64)
    n = 0
    for q in range(vac_site.shape[0]):
        v = vac_site[q]
        if occ[v] == 0:
            out[n] = v
            n += 1
        vac_of_site[v] = -1
    for q in range(n):
        vac_of_site[out[q]] = q
    for c in range(candidates.shape[0]):
        v = candidates[c]
        if occ[v] == 0 and vac_of_site[v] < 0:
            out[n] = v
            vac_of_site[v] = n
            n += 1
    return out[:n].copy()


@njit(cache=True)
def build_tree_active(
    vac_site, slot_rate, tree, leaf0: int, occ, region, site_class, offsets, rate_tab, kra,
    pref, site_e, pair, inv_kT: float, use_pairs: bool, env, n_regions: int,
) -> None:
    """As :func:`kmcflow.kmc.kernels.build_tree`, with inactive vacancies zeroed, not computed.

    A vacancy whose region code is shifted (``>= n_regions``) has no hop into it, so its slots
    are zero; the result equals the full build bit for bit.
    """
    tree[:] = 0.0
    for q in range(vac_site.shape[0]):
        v = vac_site[q]
        if region[v] >= n_regions:
            slot_rate[q, :] = 0.0
        else:
            tree[leaf0 + q] = kernels.fill_vacancy(q, v, slot_rate, occ, region, site_class,
                                                   offsets, rate_tab, kra, pref, site_e, pair,
                                                   inv_kT, use_pairs, env)
    for i in range(leaf0 - 1, 0, -1):
        tree[i] = tree[2 * i] + tree[2 * i + 1]
