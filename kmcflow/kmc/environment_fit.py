"""Fit the environment model of a catalog from computed hops, and write the catalog section.

The model (:class:`kmcflow.kmc.catalog.EnvironmentModel`) has two parts:

- an **energy model of the end states**: first-shell pair bonds ``eps[a, b]`` between
  species (a bond to a vacancy is 0), so the reaction energy of species ``s`` jumping from
  ``j`` to ``v`` is ``dE = sum_{n ~ v, n != j} eps[s, occ n] - sum_{n ~ j, n != v} eps[s, occ n]``;
- a **kinetically resolved activation barrier** per moving species and hop class, a point
  cluster expansion over the environment's orbits (under the hop's symmetry and its
  reversal): ``E_KRA = K + sum_e J[orbit(e), occupant(e)]``, with the catalog's first species
  the reference occupant (J = 0); a vacancy and a site beyond a closed boundary count as the
  reference too.

Then ``E_a = max(E_KRA + dE/2, dE, 0)``, as the engine computes it, so every rate obeys
detailed balance with the pair-bond energy. Both parts are linear least squares:

- ``eps`` from the computed reaction energies ``dE = E_final - E_initial`` (relaxed
  endpoints), with the species' own bonds summing to 0: hops fix the bonds up to one common
  shift, which changes only how two vacancies bind;
- ``K`` and ``J`` from the computed ``E_KRA = E_saddle - (E_initial + E_final)/2`` (a small
  ridge term, ``ridge_eV2`` times the identity on the J, keeps an under-determined orbit
  finite).

Vacancy-vacancy interactions are left out by design: a kMC box holds about 1 % vacancies, a
hundred times or more the equilibrium concentration near the melting point, to make the runs
short; there vacancies meet far more often than in the material, and a fitted divacancy
binding (EMT Cu: a vacancy among the environment sites lowers a Cu hop by up to 0.3 eV) makes
them gather into voids, an artefact of the enrichment that took over a Cu|Ni run in a trial
(98 % of the executed hops were vacancies flickering inside clusters, the interface did not
move). So a vacancy near a hop counts as the reference occupant, the common shift of the
bonds is fixed by ``sum_s eps[s, s] = 0`` (two vacancies in the bulk of species s bind by
``-eps[s, s]``: for two species, plus and minus half the difference the data fix, e.g.
about 0.05 eV in EMT Cu and Ni), and :mod:`kmcflow.learn` never computes environments with a
second vacancy.

Errors are those of the barrier users read: the training RMSE and maximum error of E_a
against the CI-NEB forward barriers, and the k-fold cross-validation RMSE (each fold
predicted by a model fitted without it, pair bonds included). The table entries
(:func:`table_entries`) keep each computed hop's own E_KRA and take dE from the fitted pair
bonds, so a hop and its reverse differ by exactly the energy model's dE (detailed balance), and
share the geometric mean of the forward and reverse Vineyard prefactors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmcflow.errors import CatalogError
from kmcflow.kmc.environment import (
    VACANCY_TEXT,
    environment_key,
    key_digits,
    key_text,
    parse_key_text,
    reverse_key,
)
from kmcflow.kmc.environment_rates import EnvironmentGeometry

DEFAULT_RIDGE_EV2 = 1e-4
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class EnvironmentSample:
    """One computed hop: its key, energies (eV) and prefactors (Hz), and provenance."""

    key: str
    kra_eV: float
    reaction_energy_eV: float
    barrier_eV: float
    prefactor_Hz: float
    reverse_prefactor_Hz: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_prefactor_Hz(self) -> float:
        """sqrt(forward * reverse) prefactor (the forward one alone without a reverse)."""
        if self.reverse_prefactor_Hz is None:
            return self.prefactor_Hz
        return math.sqrt(self.prefactor_Hz * self.reverse_prefactor_Hz)


@dataclass(frozen=True)
class _Parsed:
    species: np.ndarray  # (n,) species codes 1..S
    hop_class: np.ndarray  # (n,)
    codes: np.ndarray  # (n, n_env) padded with the none code
    kra: np.ndarray
    d_e: np.ndarray
    barrier: np.ndarray


@dataclass
class EnvironmentFitResult:
    """A fitted model: pair bonds, one term per (species, hop class), and its errors (eV)."""

    species: list[str]
    pair_eV: np.ndarray  # (S + 1, S + 1), row/column 0 the vacancy (0)
    terms: dict[tuple[int, int], tuple[float, np.ndarray, float]]  # (s, c) -> K, J, prefactor
    n_train: int
    rmse_eV: float
    max_error_eV: float
    cv_rmse_eV: float | None
    kra_rmse_eV: float
    reaction_energy_rmse_eV: float
    folds: int
    geometry: EnvironmentGeometry = field(repr=False)

    def fit_record(self) -> dict[str, Any]:
        """The catalog's ``environments.model.fit`` record."""
        notes = (f"E_a errors against the CI-NEB forward barriers; E_KRA RMSE "
                 f"{self.kra_rmse_eV:.4f} eV, dE RMSE {self.reaction_energy_rmse_eV:.4f} eV "
                 "(pair bonds); " + (f"cross-validation {self.folds}-fold"
                                     if self.cv_rmse_eV is not None else
                                     "no cross-validation: too few hops, or a species or hop "
                                     "class in one fold only"))
        return {"n_train": self.n_train, "rmse_eV": round(self.rmse_eV, 6),
                "cv_rmse_eV": None if self.cv_rmse_eV is None else round(self.cv_rmse_eV, 6),
                "max_error_eV": round(self.max_error_eV, 6), "notes": notes}

    def pair_interactions_eV(self) -> dict[str, float]:
        """``energy_model.pair_interactions_eV`` of the catalog (every species pair)."""
        out = {}
        for a in range(1, len(self.species) + 1):
            for b in range(a, len(self.species) + 1):
                out[f"{self.species[a - 1]}-{self.species[b - 1]}"] = round(
                    float(self.pair_eV[a, b]), 6)
        return out

    def model_terms(self) -> list[dict[str, Any]]:
        """``environments.model.terms`` of the catalog."""
        names = occupant_names(self.species)
        out = []
        for (s, c), (k0, j, prefactor) in sorted(self.terms.items()):
            orbits = [{names[x]: round(float(j[o, x]), 6) + 0.0 for x in range(j.shape[1])
                       if j[o, x] != 0.0} for o in range(j.shape[0])]
            out.append({"species": self.species[s - 1], "hop_class": int(c),
                        "kra_eV": round(float(k0), 6), "prefactor_Hz": float(prefactor),
                        "orbit_eV": orbits})
        return out

    def reaction_energy(self, s: int, c: int, codes: np.ndarray) -> float:
        """The reaction energy (eV) of species ``s`` hopping in class ``c`` in ``codes``."""
        return float(_pair_features(np.array([s]), np.array([c]), codes[None, :],
                                    self.geometry, len(self.species))[0]
                     @ _pair_vector(self.pair_eV))

    def kra(self, s: int, c: int, codes: np.ndarray) -> float:
        """E_KRA (eV) of the model, or NaN without a term for (s, c)."""
        if (s, c) not in self.terms:
            return float("nan")
        k0, j, _ = self.terms[s, c]
        return _kra_sum(k0, j, c, codes, self.geometry)

    def barrier(self, key: str) -> float:
        """The model's E_a (eV) of the hop with key text ``key``."""
        s, c, codes = parse_key_text(key, self.species, self.geometry.envs)
        d_e = self.reaction_energy(s, c, codes)
        return max(self.kra(s, c, codes) + 0.5 * d_e, d_e, 0.0)


def occupant_names(species: list[str]) -> dict[int, str]:
    """Occupation code -> the name the catalog uses (0 the vacancy ``V``)."""
    return {0: VACANCY_TEXT, **{i: n for i, n in enumerate(species, start=1)}}


def _parse(samples: list[EnvironmentSample], species: list[str],
           geometry: EnvironmentGeometry) -> _Parsed:
    rows = []
    for i, sample in enumerate(samples):
        try:
            s, c, codes = parse_key_text(sample.key, species, geometry.envs)
        except CatalogError as exc:
            raise CatalogError(f"sample {i}: {exc.message}", field=f"samples[{i}].key",
                               hint=exc.hint) from exc
        rows.append((s, c, codes, sample.kra_eV, sample.reaction_energy_eV, sample.barrier_eV))
    if not rows:
        raise CatalogError("no computed hops to fit", field="samples",
                           hint="compute some environments first")
    s, c, codes, kra, d_e, barrier = zip(*rows, strict=True)
    return _Parsed(np.array(s), np.array(c), np.array(codes), np.array(kra, float),
                   np.array(d_e, float), np.array(barrier, float))


def _pair_index(n_species: int) -> dict[tuple[int, int], int]:
    pairs = [(a, b) for a in range(1, n_species + 1) for b in range(a, n_species + 1)]
    return {p: i for i, p in enumerate(pairs)}


def _pair_features(s: np.ndarray, c: np.ndarray, codes: np.ndarray,
                   geometry: EnvironmentGeometry, n_species: int) -> np.ndarray:
    """(n, n_pairs) design matrix of dE in the pair bonds (vacancy and none sites 0)."""
    index = _pair_index(n_species)
    x = np.zeros((len(s), len(index)))
    for i in range(len(s)):
        for e in range(int(geometry.envs.n_env_of_class[c[i]])):
            code = int(codes[i, e])
            if not 1 <= code <= n_species:
                continue
            sign = float(geometry.near_v[c[i], e]) - float(geometry.near_j[c[i], e])
            if sign:
                x[i, index[tuple(sorted((int(s[i]), code)))]] += sign
    return x


def _pair_vector(pair: np.ndarray) -> np.ndarray:
    n = pair.shape[0] - 1
    return np.array([pair[a, b] for (a, b) in _pair_index(n)])


def _pair_matrix(vec: np.ndarray, n_species: int) -> np.ndarray:
    out = np.zeros((n_species + 1, n_species + 1))
    for (a, b), i in _pair_index(n_species).items():
        out[a, b] = out[b, a] = vec[i]
    return out


def _feature_codes(n_species: int) -> list[int]:
    """Occupants with a J of their own: species 2..S (the first and a vacancy: reference)."""
    return list(range(2, n_species + 1))


def _kra_features(c: int, codes: np.ndarray, geometry: EnvironmentGeometry,
                  occupants: list[int]) -> np.ndarray:
    """(n, 1 + n_orbits * len(occupants)) design matrix: 1, then occupant counts per orbit."""
    n_orb = int(geometry.n_orbits[c])
    k = len(occupants)
    x = np.zeros((len(codes), 1 + n_orb * k))
    x[:, 0] = 1.0
    for e in range(int(geometry.envs.n_env_of_class[c])):
        o = int(geometry.orbit_index[c, e])
        for i, code in enumerate(occupants):
            x[:, 1 + o * k + i] += codes[:, e] == code
    return x


def _solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares with ``ridge`` on every coefficient but the first (the intercept)."""
    penalty = np.sqrt(ridge) * np.eye(x.shape[1])[1:]
    a = np.vstack([x, penalty])
    b = np.concatenate([y, np.zeros(len(penalty))])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _fit_pairs(x: np.ndarray, d_e: np.ndarray, n_species: int) -> np.ndarray:
    """Pair bonds from reaction energies, with the species' own bonds summing to 0.

    Hops fix the bonds up to one shift of all of them, which changes only how two vacancies
    bind; that binding is left out on purpose (see the module docstring), so the shift is
    fixed by ``sum_s eps[s, s] = 0`` whatever the data: the gauge then does not depend on the
    order of the species.
    """
    if x.size == 0:
        return np.zeros(x.shape[1])
    index = _pair_index(n_species)
    own = np.array([1.0 if a == b else 0.0 for (a, b) in index])
    basis = np.linalg.svd(own[None, :])[2][1:].T  # the bonds with sum_s eps[s, s] = 0
    return basis @ np.linalg.lstsq(x @ basis, d_e, rcond=None)[0]


def _fit(p: _Parsed, rows: np.ndarray, geometry: EnvironmentGeometry, n_species: int,
         ridge: float):
    xp = _pair_features(p.species[rows], p.hop_class[rows], p.codes[rows], geometry, n_species)
    pair_vec = _fit_pairs(xp, p.d_e[rows], n_species)
    terms = {}
    for s, c in sorted(set(zip(p.species[rows].tolist(), p.hop_class[rows].tolist(),
                               strict=True))):
        if geometry.envs.reverse_class[c] != c:
            continue  # the catalog's model takes classes that are their own reverse: table only
        sel = rows[(p.species[rows] == s) & (p.hop_class[rows] == c)]
        occupants = _feature_codes(n_species)
        coef = _solve(_kra_features(c, p.codes[sel], geometry, occupants), p.kra[sel], ridge)
        j = np.zeros((int(geometry.n_orbits[c]), n_species + 1))
        if occupants:
            j[:, occupants] = coef[1:].reshape(int(geometry.n_orbits[c]), len(occupants))
        terms[s, c] = (float(coef[0]), j)
    return _pair_matrix(pair_vec, n_species), terms


def _kra_sum(k0: float, j: np.ndarray, c: int, codes: np.ndarray,
             geometry: EnvironmentGeometry) -> float:
    """E_KRA = K + sum_e J[orbit(e), occupant(e)] over class ``c``'s sites (none code: 0)."""
    total = k0
    for e in range(int(geometry.envs.n_env_of_class[c])):
        code = int(codes[e])
        if code < j.shape[1]:
            total += j[int(geometry.orbit_index[c, e]), code]
    return float(total)


def _predict(p: _Parsed, rows: np.ndarray, pair: np.ndarray, terms, geometry, n_species
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted (E_a, E_KRA, dE) of ``rows``; NaN where no term covers the hop."""
    d_e = _pair_features(p.species[rows], p.hop_class[rows], p.codes[rows], geometry,
                         n_species) @ _pair_vector(pair)
    kra = np.full(len(rows), np.nan)
    for i, r in enumerate(rows.tolist()):
        term = terms.get((int(p.species[r]), int(p.hop_class[r])))
        if term is None:
            continue
        kra[i] = _kra_sum(term[0], term[1], int(p.hop_class[r]), p.codes[r], geometry)
    barrier = np.maximum(np.maximum(kra + 0.5 * d_e, d_e), 0.0)
    return barrier, kra, d_e


def fit_environment_model(samples: list[EnvironmentSample], species: list[str],
                          geometry: EnvironmentGeometry, *, ridge_eV2: float = DEFAULT_RIDGE_EV2,
                          folds: int = DEFAULT_FOLDS, seed: int = 0) -> EnvironmentFitResult:
    """Fit pair bonds and the E_KRA expansion to ``samples`` (see the module docstring).

    ``folds`` (>= 2) splits the samples at random (``seed``) for the cross-validation; with
    fewer samples than folds there is no cross-validation (``cv_rmse_eV`` None).
    """
    if not ridge_eV2 >= 0 or not math.isfinite(ridge_eV2):
        raise CatalogError(f"ridge must be a finite number >= 0, got {ridge_eV2}",
                           field="ridge_eV2")
    if int(folds) < 2:
        raise CatalogError(f"folds must be >= 2, got {folds}", field="folds")
    n_species = len(species)
    p = _parse(samples, species, geometry)
    every = np.arange(len(samples))
    pair, terms = _fit(p, every, geometry, n_species, ridge_eV2)
    pair = np.round(pair, 6)  # as the catalog holds it: the table's dE must be the engine's
    barrier, kra, d_e = _predict(p, every, pair, terms, geometry, n_species)
    covered = np.isfinite(barrier)  # hops of a class that is not its own reverse: table only
    if not covered.any():
        raise CatalogError("no computed hop is of a hop class the model takes (classes that "
                           "are their own reverse)", field="samples",
                           hint="these hops can only be listed in the table")
    err = (barrier - p.barrier)[covered]
    cv = None
    k = int(folds)
    if len(samples) >= k:
        order = np.random.default_rng(seed).permutation(len(samples))
        held = np.full(len(samples), np.nan)
        for f in range(k):
            test = np.sort(order[f::k])
            train = np.setdiff1d(every, test)
            fold_pair, fold_terms = _fit(p, train, geometry, n_species, ridge_eV2)
            held[test] = _predict(p, test, fold_pair, fold_terms, geometry, n_species)[0]
        # a species or class seen only in its own fold has no term there: CV says nothing
        if np.all(np.isfinite(held[covered])):
            cv = float(np.sqrt(np.mean((held - p.barrier)[covered] ** 2)))
    prefactors: dict[tuple[int, int], list[float]] = {}
    for i, sample in enumerate(samples):
        prefactors.setdefault((int(p.species[i]), int(p.hop_class[i])), []).append(
            math.log(sample.mean_prefactor_Hz))
    full_terms = {sc: (k0, j, float(math.exp(np.mean(prefactors[sc]))))
                  for sc, (k0, j) in terms.items()}
    return EnvironmentFitResult(
        species=list(species), pair_eV=pair, terms=full_terms, n_train=len(samples),
        rmse_eV=float(np.sqrt(np.mean(err ** 2))), max_error_eV=float(np.max(np.abs(err))),
        cv_rmse_eV=cv, kra_rmse_eV=float(np.sqrt(np.mean((kra - p.kra)[covered] ** 2))),
        reaction_energy_rmse_eV=float(np.sqrt(np.mean((d_e - p.d_e) ** 2))), folds=k,
        geometry=geometry)


def table_entries(samples: list[EnvironmentSample], fit: EnvironmentFitResult
                  ) -> list[dict[str, Any]]:
    """``environments.table`` entries: each computed hop and its reverse (see the docstring).

    A hop computed twice (the same environment up to symmetry, either direction) keeps the
    mean of its E_KRA values and prefactors; its provenance lists every computation.
    """
    envs = fit.geometry.envs
    n_species = len(fit.species)
    merged: dict[tuple[int, int, int], dict[str, Any]] = {}
    for sample in samples:
        s, c, codes = parse_key_text(sample.key, fit.species, envs)
        key = environment_key(codes, c, envs, n_species)
        c_rev, key_rev = reverse_key(key, c, envs, n_species)
        # one record per unordered pair {hop, reverse}; the smaller identity is the forward
        forward, kra_sign = ((s, c, key), 1.0) if (c, key) <= (c_rev, key_rev) else \
            ((s, c_rev, key_rev), -1.0)
        rec = merged.setdefault(forward, {"kra": [], "prefactor": [], "provenance": []})
        rec["kra"].append(sample.kra_eV)
        rec["prefactor"].append(math.log(sample.mean_prefactor_Hz))
        rec["provenance"].append({**sample.provenance, "key": sample.key,
                                  "direction_computed": "forward" if kra_sign > 0
                                  else "reverse"})
    out = []
    for (s, c, key), rec in merged.items():
        kra = float(np.mean(rec["kra"]))
        prefactor = float(math.exp(np.mean(rec["prefactor"])))
        digits = key_digits(key, envs, n_species)
        d_e = fit.reaction_energy(s, c, digits)
        c_rev, key_rev = reverse_key(key, c, envs, n_species)
        pairs = [(c, key, max(kra + 0.5 * d_e, d_e, 0.0), d_e)]
        if (c_rev, key_rev) != (c, key):
            pairs.append((c_rev, key_rev, max(kra - 0.5 * d_e, -d_e, 0.0), -d_e))
        for cc, kk, barrier, d_e_entry in pairs:
            n_env = int(envs.n_env_of_class[cc])
            text = key_text(fit.species, s, cc, key_digits(kk, envs, n_species)[:n_env])
            prov = {"source": "kmcflow environments fit", "kra_eV": round(kra, 6),
                    "reaction_energy_model_eV": round(d_e_entry, 6),
                    "computed": rec["provenance"],
                    "notes": "E_a = max(E_KRA + dE/2, dE, 0): E_KRA computed (CI-NEB), dE "
                             "from the fitted pair bonds (detailed balance)"}
            out.append({"key": text, "barrier_eV": barrier,
                        "prefactor_Hz": prefactor, "provenance": prov})
    return out
