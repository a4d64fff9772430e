"""Numba kernels that own the kMC loop: random numbers, the rate sum tree, hops, sampling.

Algorithm: rejection-free residence-time kMC (BKL / n-fold way) over vacancies. Each vacancy
``q`` at site ``v`` caches the rate of each hop into it (a neighbour atom of species ``s``
jumping from ``j`` to ``v``) in ``slot_rate[q]``; its sum is a leaf of a binary sum tree. The
tree picks a vacancy with probability proportional to its total (O(log N_v)); a scan over its
at most ``z`` cached slots picks the hop. After the hop only the rates that could change are
recomputed: the moved vacancy, and the hops into vacancies that read one of the two changed
sites (with pair interactions or environments: :func:`collect_work`). Every leaf is always the
in-order sum of its slots and every internal node the sum of its children, so an incrementally
updated tree equals a rebuilt one bit for bit.
Time advances by ``-ln(u) / R`` with ``R`` the tree's root.

Trajectories do not depend on how the loop is chunked: the time of the *next* event is drawn
right after each event and kept in the state, so stopping at a sampling time or a checkpoint
consumes no random number. The generator is xoshiro256** with its four words in the state, so
a checkpoint restarts a trajectory bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kmcflow.kmc.environment import canonical_key
from kmcflow.kmc.refill import collect_work, count_vacant_neighbours

STATUS_MAX_EVENTS = 0
STATUS_TIME_REACHED = 1
STATUS_STALLED = 2
STATUS_OVERFLOW = 3
STATUS_LOG_FULL = 4

SOURCE_TABLE = 0
SOURCE_MODEL = 1
SOURCE_REGION = 2
"""Where an executed hop's rate came from (environment catalogs): the exact environment
table, the fitted model, or the region events."""

_DISP_LIMIT = 32000


@njit(inline="always")
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (np.uint64(64) - k))


@njit(cache=True)
def next_uint64(s: np.ndarray) -> np.uint64:
    """Advance the xoshiro256** state ``s`` (4 x uint64) and return the next output."""
    result = _rotl(s[1] * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], np.uint64(45))
    return result


@njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """Return a double in [0, 1) from the top 53 bits of the next output."""
    return float(next_uint64(s) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def uniform_open(s: np.ndarray) -> float:
    """Return a double in (0, 1], safe for ``-log``."""
    return (float(next_uint64(s) >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def tree_update(tree: np.ndarray, leaf0: int, q: int, value: float) -> None:
    """Set leaf ``q`` to ``value`` and recompute its ancestors as sums of their children."""
    i = leaf0 + q
    tree[i] = value
    i >>= 1
    while i >= 1:
        tree[i] = tree[2 * i] + tree[2 * i + 1]
        i >>= 1


@njit(cache=True)
def tree_select(tree: np.ndarray, leaf0: int, u: float) -> tuple[int, float]:
    """Pick a leaf with probability proportional to its value; return it and the remainder."""
    r = u * tree[1]
    i = 1
    while i < leaf0:
        left = tree[2 * i]
        right = tree[2 * i + 1]
        if (r < left and left > 0.0) or not right > 0.0:
            i = 2 * i
        else:
            r -= left
            i = 2 * i + 1
    leaf_value = tree[i]
    if r >= leaf_value:
        r = leaf_value * 0.5
    if r < 0.0:
        r = 0.0
    return i - leaf0, r


@njit(inline="always")
def hop_energy_change(j: int, v: int, s: int, occ, region, site_class, offsets, site_e,
                      pair) -> float:
    """Energy change (eV) of the atom of species ``s`` at ``j`` jumping into the vacancy at ``v``.

    Site energies of the two regions plus the first-shell pair bonds of the moving atom (the
    vacancy carries no interaction).
    """
    d_e = site_e[s, region[v]] - site_e[s, region[j]]
    cv = site_class[v]
    for k in range(offsets.shape[1]):
        off = offsets[cv, k]
        if off != 0:
            n = v + off
            if n != j:
                d_e += pair[s, occ[n]]
    cj = site_class[j]
    for k in range(offsets.shape[1]):
        off = offsets[cj, k]
        if off != 0:
            d_e -= pair[s, occ[j + off]]
    return d_e


@njit(inline="always")
def kra_barrier(e_kra: float, d_e: float) -> float:
    """E_a = max(E_KRA + dE/2, dE, 0): detailed balance by construction."""
    ea = e_kra + 0.5 * d_e
    if ea < d_e:
        ea = d_e
    if ea < 0.0:
        ea = 0.0
    return ea


@njit(inline="always")
def hop_rate(
    j: int, v: int, s: int, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
    pair, inv_kT: float, use_pairs: bool,
) -> float:
    """Rate of the atom of species ``s`` at ``j`` jumping into the vacancy at ``v`` (regions)."""
    rj = region[j]
    rv = region[v]
    if not use_pairs:
        return rate_tab[s, rj, rv]
    d_e = hop_energy_change(j, v, s, occ, region, site_class, offsets, site_e, pair)
    ea = kra_barrier(kra[s, rj, rv], d_e)
    return pref[s, rj, rv] * math.exp(-ea * inv_kT)


@njit(inline="always")
def _lower_bound(arr, lo: int, hi: int, x) -> int:
    """First index in ``arr[lo:hi]`` (sorted) whose value is not below ``x`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if arr[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def fill_work(
    work, n_work: int, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
    pair, inv_kT: float, use_pairs: bool, env,
) -> None:
    """Compute the hop rates the work list asks for and cache them in ``slot_rate``.

    Row ``w < n_work`` of ``work`` is ``(vacancy q, its site v, slot)``: the hop from neighbour
    ``slot`` of ``v`` into it, or every hop into it if the slot is -1. Without environments a
    hop is rated by :func:`hop_rate`; with them by its table entry, else the model (E_KRA =
    K[s, c] + sum_e J[s, c, e, code_e], E_a = max(E_KRA + dE/2, dE, 0)), else the regions. The
    table is searched by *raw key* (the codes in the hop's own order as a base-(S+2) number)
    among those of every symmetry image of its entries (``env[20:23]``): no canonical key.
    Speed: each array bound by a call, even an inlined one, costs reference counting (the
    whole ``env``: about 180 ns, three hops), hence one :func:`_fill` call per event.
    """
    _fill(work, n_work, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
          pair, inv_kT, use_pairs, env[0], env[1], env[2], env[3].shape[0], env[4], env[5],
          env[8], env[9], env[10], env[11], env[12], env[20], env[21], env[22], env[13])


@njit(cache=True)
def _fill(work, n_work, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
          pair, inv_kT, use_pairs, env_on, hop_class, reach, n_classes, base, none_code,
          table_rate, model_on, model_kra, site_terms, model_pref, raw_start, raw_key, raw_row,
          codes):
    """:func:`fill_work` with its env arrays; dE as hop_energy_change, inline (10 % faster).

    ``codes`` (scratch) keeps a hop's environment codes for the model's site terms.
    """
    zmax = offsets.shape[1]
    for w in range(n_work):
        q = work[w, 0]
        v = work[w, 1]
        only = work[w, 2]
        cv = site_class[v]
        bv = cv % reach.shape[0]
        for k in range(zmax):
            if only >= 0 and k != only:
                continue
            off = offsets[cv, k]
            rate = 0.0
            if off != 0 and occ[v + off] != 0:
                j = v + off
                s = occ[j]
                rated = False
                if env_on:
                    c = hop_class[bv, k]
                    g = s * n_classes + c
                    lo = raw_start[g]
                    hi = raw_start[g + 1]
                    model = model_on[s, c]
                    if lo < hi or model:
                        cls_j = site_class[j]
                        raw = np.int64(0)
                        for e in range(reach.shape[2]):
                            r = reach[bv, k, e]
                            code = none_code
                            if r >= 0:
                                if r < zmax:
                                    o = offsets[cv, r]
                                    if o != 0:
                                        code = occ[v + o]
                                else:
                                    o = offsets[cls_j, r - zmax]
                                    if o != 0:
                                        code = occ[j + o]
                            codes[e] = code
                            raw = raw * base + code
                        i = _lower_bound(raw_key, lo, hi, raw)
                        if i < hi and raw_key[i] == raw:
                            rate = table_rate[raw_row[i]]
                            rated = True
                        elif model:  # the site terms only now: most hops are table hits
                            e_kra = model_kra[s, c]
                            for e in range(reach.shape[2]):
                                e_kra += site_terms[s, c, e, codes[e]]
                            d_e = site_e[s, region[v]] - site_e[s, region[j]]  # as
                            for kk in range(zmax):  # hop_energy_change, without the call
                                o = offsets[cv, kk]
                                if o != 0 and v + o != j:
                                    d_e += pair[s, occ[v + o]]
                            for kk in range(zmax):
                                o = offsets[cls_j, kk]
                                if o != 0:
                                    d_e -= pair[s, occ[j + o]]
                            rate = model_pref[s, c] * math.exp(-kra_barrier(e_kra, d_e) * inv_kT)
                            rated = True
                if not rated:
                    rate = hop_rate(j, v, s, occ, region, site_class, offsets, rate_tab, kra,
                                    pref, site_e, pair, inv_kT, use_pairs)
            slot_rate[q, k] = rate


@njit(cache=True)
def slot_sum(q: int, slot_rate) -> float:
    """Sum of the cached slot rates of vacancy ``q``, in slot order."""
    total = 0.0
    for k in range(slot_rate.shape[1]):
        total += slot_rate[q, k]
    return total


@njit(cache=True)
def fill_vacancy(
    q: int, v: int, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
    pair, inv_kT: float, use_pairs: bool, env,
) -> float:
    """Compute the rate of every hop into vacancy ``q`` at ``v``; cache them; return the sum."""
    work = np.array([[q, v, -1]], np.int64)
    fill_work(work, 1, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
              pair, inv_kT, use_pairs, env)
    return slot_sum(q, slot_rate)


@njit(cache=True)
def build_tree(
    vac_site, slot_rate, tree, leaf0: int, occ, region, site_class, offsets, rate_tab, kra,
    pref, site_e, pair, inv_kT: float, use_pairs: bool, env,
) -> None:
    """Fill the slot-rate cache and the sum tree from scratch (internal nodes bottom-up)."""
    n = vac_site.shape[0]
    work = np.full((n, 3), -1, np.int64)
    work[:, 0] = np.arange(n)
    work[:, 1] = vac_site
    fill_work(work, n, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref, site_e,
              pair, inv_kT, use_pairs, env)
    tree[:] = 0.0
    for q in range(n):
        tree[leaf0 + q] = slot_sum(q, slot_rate)
    for i in range(leaf0 - 1, 0, -1):
        tree[i] = tree[2 * i] + tree[2 * i + 1]


@njit(cache=True)
def run_events(
    occ, region, site_class, class_basis, offsets, nbr_shift, reverse_slot, disp, basis0,
    vac_site, vac_of_site, slot_rate, tree, leaf0: int, rng, clock, event_counts, rate_tab, kra,
    pref, site_e, pair, inv_kT: float, use_pairs: bool, env, max_events: int, t_stop: float,
) -> tuple[int, int]:
    """Execute events until ``max_events`` are done or the next one lies beyond ``t_stop``.

    ``clock[0]``/``clock[1]``: time of the last and of the next event. Returns the number of
    events executed and a status code.

    After a hop j -> v, the moved vacancy is recomputed in full. Without pair interactions a
    neighbouring vacancy changes in one slot only (the one pointing at v or j), so only that
    slot is recomputed and its leaf re-summed; with pair interactions or an environment catalog
    every hop that reads v or j is (:func:`collect_work`, ``env[19]`` the work list; the
    vacant-neighbour counts it reads are counted at each call and kept up to date).

    With environments (``env[0]``) the executed hop's source is counted in ``env[14]`` and, for
    the species flagged in ``env[15]`` or (``env[16]``) model-rated hops, a record (species,
    hop class, key, source, basis of v, slot) appended to ``env[17]`` (count ``env[18][0]``);
    a full log stops the loop after the event with :data:`STATUS_LOG_FULL`.
    """
    n_done = 0
    status = STATUS_MAX_EVENTS
    zmax = offsets.shape[1]
    wide = use_pairs or env[0]
    env_on, hop_class, reach, perms, base, none_code = (env[0], env[1], env[2], env[3], env[4],
                                                        env[5])
    table_key, model_on, codes, counts, log_species, log_model = (env[7], env[9], env[13], env[14],
                                                                  env[15], env[16])
    log, log_n, work, raw_start, raw_key, raw_row = (env[17], env[18], env[19], env[20], env[21],
                                                     env[22])
    table_rate, model_kra, site_terms, model_pref = env[8], env[10], env[11], env[12]
    vacant_nbrs = (count_vacant_neighbours(vac_site, occ.shape[0], site_class, offsets) if wide
                   else np.zeros(1, np.int8))
    while n_done < max_events:
        t_next = clock[1]
        if t_next > t_stop:
            status = STATUS_TIME_REACHED
            break
        if not tree[1] > 0.0:
            status = STATUS_STALLED
            break
        q, r = tree_select(tree, leaf0, uniform(rng))
        chosen = -1
        for k in range(zmax):
            rate = slot_rate[q, k]
            if rate > 0.0:
                chosen = k
                if r < rate:
                    break
                r -= rate
        if chosen < 0:
            status = STATUS_STALLED
            break
        v = vac_site[q]
        cv = site_class[v]
        j = v + offsets[cv, chosen]
        s = occ[j]
        bv = class_basis[cv]
        log_full = False
        if env_on:  # classify the hop again (as fill_work), count and log it
            hop_c = hop_class[bv, chosen]
            raw = np.int64(0)
            for e in range(codes.shape[0]):
                r = reach[bv, chosen, e]
                code = none_code
                if r >= 0:  # no r % zmax: an integer division per site costs 20 % of it
                    site, slot = (v, r) if r < zmax else (j, r - zmax)
                    o = offsets[site_class[site], slot]
                    if o != 0:
                        code = occ[site + o]
                codes[e] = code
                raw = raw * base + code
            g = s * perms.shape[0] + hop_c
            hi = raw_start[g + 1]
            i = _lower_bound(raw_key, raw_start[g], hi, raw)
            key = np.int64(-1)
            if i < hi and raw_key[i] == raw:
                source = SOURCE_TABLE
                key = table_key[raw_row[i]]
            else:
                source = SOURCE_MODEL if model_on[s, hop_c] else SOURCE_REGION
                if log_species[s] or log_model:
                    key = canonical_key(codes, perms[hop_c], base)
            counts[source] += 1
            if log_species[s] or (log_model and source != SOURCE_TABLE):
                n_log = log_n[0]
                log[n_log, 0], log[n_log, 1], log[n_log, 2] = s, hop_c, key
                log[n_log, 3], log[n_log, 4], log[n_log, 5] = source, bv, chosen
                log_n[0] = n_log + 1
                log_full = log_n[0] >= log.shape[0]
        ok = True
        for a in range(3):
            new = np.int32(disp[j, a]) - np.int32(nbr_shift[bv, chosen, a])
            ok = ok and -_DISP_LIMIT <= new <= _DISP_LIMIT
        if not ok:
            status = STATUS_OVERFLOW
            break
        event_counts[s, region[j], region[v]] += 1
        for a in range(3):
            disp[v, a] = disp[j, a] - nbr_shift[bv, chosen, a]
            disp[j, a] = 0
        basis0[v] = basis0[j]
        occ[v] = s
        occ[j] = 0
        vac_of_site[v] = -1
        vac_of_site[j] = q
        vac_site[q] = j
        if wide:  # every hop that reads v or j, in one call (see fill_work)
            for k in range(zmax):  # v is no vacancy now; j counts after collect_work
                off = offsets[cv, k]
                if off != 0:
                    vacant_nbrs[v + off] -= 1
            n_work = collect_work(v, j, q, work, vac_of_site, reverse_slot, class_basis, occ,
                                  site_class, offsets, vacant_nbrs)
            cj = site_class[j]
            for k in range(zmax):
                off = offsets[cj, k]
                if off != 0:
                    vacant_nbrs[j + off] += 1
            _fill(work, n_work, slot_rate, occ, region, site_class, offsets, rate_tab, kra, pref,
                  site_e, pair, inv_kT, use_pairs, env_on, hop_class, reach, perms.shape[0],
                  base, none_code, table_rate, model_on, model_kra, site_terms, model_pref,
                  raw_start, raw_key, raw_row, codes)
            for w in range(n_work):  # as tree_update(slot_sum(...)), without the calls
                u = work[w, 0]
                i = leaf0 + u
                tree[i] = 0.0
                for k in range(zmax):
                    tree[i] += slot_rate[u, k]
                i >>= 1
                while i >= 1:
                    tree[i] = tree[2 * i] + tree[2 * i + 1]
                    i >>= 1
        else:  # regions only: the moved vacancy in full, one slot of each neighbouring one
            cj = site_class[j]
            for k in range(zmax):
                off = offsets[cj, k]
                rate = 0.0
                if off != 0 and occ[j + off] != 0:
                    rate = hop_rate(j + off, j, occ[j + off], occ, region, site_class, offsets,
                                    rate_tab, kra, pref, site_e, pair, inv_kT, use_pairs)
                slot_rate[q, k] = rate
            tree_update(tree, leaf0, q, slot_sum(q, slot_rate))
            for centre in (v, j):
                cc = site_class[centre]
                bc = class_basis[cc]
                for k in range(zmax):
                    off = offsets[cc, k]
                    n = centre + off
                    if off != 0 and occ[n] == 0 and n != j:  # its slot at v (now s) or j (now 0)
                        u = vac_of_site[n]
                        back = reverse_slot[bc, k]
                        rate = 0.0
                        if centre == v:
                            rate = hop_rate(v, n, s, occ, region, site_class, offsets, rate_tab,
                                            kra, pref, site_e, pair, inv_kT, use_pairs)
                        slot_rate[u, back] = rate
                        tree_update(tree, leaf0, u, slot_sum(u, slot_rate))
        clock[0] = t_next
        n_done += 1
        total = tree[1]
        if total > 0.0:
            clock[1] = t_next - math.log(uniform_open(rng)) / total
        else:
            clock[1] = np.inf
        if log_full:
            status = STATUS_LOG_FULL
            break
    return n_done, status


@njit(cache=True)
def sample_observables(
    occ, disp, basis0, dims, layers_per_cell: int, layer_of_basis, vectors, basis_cart,
    n_species1: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer occupation counts and tracer squared displacements per species.

    Returns ``counts`` (S+1, n_layers) int64, ``sq_disp_sum`` (S+1,) in Angstrom^2 and
    ``n_atoms`` (S+1,).
    """
    nx, ny, nz = dims[0], dims[1], dims[2]
    nb = layer_of_basis.shape[0]
    counts = np.zeros((n_species1, nz * layers_per_cell), np.int64)
    sq = np.zeros(n_species1)
    n_atoms = np.zeros(n_species1, np.int64)
    i = 0
    for _ix in range(nx):
        for _iy in range(ny):
            for iz in range(nz):
                for b in range(nb):
                    s = occ[i]
                    counts[s, iz * layers_per_cell + layer_of_basis[b]] += 1
                    if s != 0:
                        b0 = basis0[i]
                        d2 = 0.0
                        for a in range(3):
                            x = basis_cart[b, a] - basis_cart[b0, a]
                            for c in range(3):
                                x += disp[i, c] * vectors[c, a]
                            d2 += x * x
                        sq[s] += d2
                        n_atoms[s] += 1
                    i += 1
    return counts, sq, n_atoms
