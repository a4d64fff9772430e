"""jobflow flows: one hop (relax both endpoints, NEB, prefactor, result) and a campaign.

:class:`HopFlowMaker` composes the makers of :mod:`kmcflow.workflows.makers` the way atomate2
composes its makers; :class:`CampaignFlowMaker` makes one hop flow per hop and a final job that
assembles the catalog. Each hop's result job carries ``metadata["cache_key"]``, a hash of its
endpoints and settings, by which :mod:`kmcflow.workflows.campaign` finds finished hops in the
store and skips them on a rerun.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jobflow import Flow, Maker, job

from kmcflow.workflows.makers import (
    NebMaker,
    PrefactorMaker,
    RelaxMaker,
    carry_band_job,
    hop_result_job,
    interpolate_job,
)


def cache_key(hop: dict[str, Any], initial, final, settings: dict[str, Any]) -> str:
    """Hash of what fixes a hop's result: its endpoints and every setting and config.

    ``settings`` is JSON-ready (:meth:`HopFlowMaker.settings`); keys are sorted at every level,
    so the key does not depend on the order fields were given in.
    """
    def arrays(s):
        return {"species": [site.species_string for site in s],
                "frac": np.round(s.frac_coords, 6).tolist(),
                "lattice": np.round(s.lattice.matrix, 6).tolist()}

    payload = json.dumps({"event_key": hop.get("event_key"), "initial": arrays(initial),
                          "final": arrays(final), "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass
class HopFlowMaker(Maker):
    """Relax both endpoints, interpolate, CI-NEB, prefactor, result.

    The band's image count and interpolation are those of ``neb_maker.settings``; makers left
    out are the defaults with this calculator.
    """

    name: str = "kmcflow hop"
    calculator: dict = field(default_factory=lambda: {"name": "emt"})
    relax_maker: RelaxMaker | None = None
    neb_maker: NebMaker | None = None
    prefactor_maker: PrefactorMaker | None = None

    def makers(self) -> tuple[RelaxMaker, NebMaker, PrefactorMaker]:
        """The relax, NEB and prefactor makers (defaults with this calculator if not given)."""
        return (self.relax_maker or RelaxMaker(calculator_config=self.calculator),
                self.neb_maker or NebMaker(calculator_config=self.calculator),
                self.prefactor_maker or PrefactorMaker(calculator_config=self.calculator))

    def settings(self) -> dict[str, Any]:
        """Every setting that changes the result (for the cache key), JSON-ready."""
        relax, neb, prefactor = self.makers()
        calculator = {k: v for k, v in self.calculator.items() if k != "hubbard_U_source"}
        return {"calculator": calculator,  # where U came from is provenance, not a setting
                "relax": relax.settings.model_dump(mode="json"),
                "neb": neb.settings.model_dump(mode="json"),
                "prefactor": prefactor.settings.model_dump(mode="json")}

    def warm_start_makers(self) -> tuple[RelaxMaker, NebMaker] | None:
        """The relax and NEB makers of the calculator's warm start, or None without one.

        Their settings are the hop's (the band without a surrogate); their checkpoints, where
        the hop's makers have one, are folders of their own beside them.
        """
        from kmcflow.workflows.calculators import load_calculator_config

        cheap = load_calculator_config(self.calculator).warm_start
        if cheap is None:
            return None
        relax, neb, _ = self.makers()
        calc = cheap.model_dump(mode="json")

        def beside(folder: str | None) -> str | None:
            return None if folder is None else f"{folder}_warm_start"

        return (RelaxMaker(name="kmcflow warm-start relax", calculator_config=calc,
                           settings=relax.settings,
                           checkpoint_dir=beside(relax.checkpoint_dir)),
                NebMaker(name="kmcflow warm-start CI-NEB", calculator_config=calc,
                         settings=neb.settings.model_copy(update={"surrogate": "none"}),
                         checkpoint_dir=beside(neb.checkpoint_dir),
                         checkpoint_identity=neb.checkpoint_identity))

    def make(self, initial, final, hop: dict[str, Any] | None = None) -> Flow:
        """The flow of one hop from pymatgen endpoint structures (selective dynamics kept).

        With a warm-start calculator the cheap endpoints and band come first, and the hop's
        own relaxations and band start from them (:mod:`kmcflow.workflows.warm_start`).
        """
        hop = dict(hop or {})
        relax, neb_maker, pre_maker = self.makers()
        jobs: list = []
        warm_outputs = None
        start_i, start_f = initial, final
        cheap = self.warm_start_makers()
        if cheap is not None:
            cheap_relax, cheap_neb = cheap
            cheap_i, cheap_f = cheap_relax.make(initial), cheap_relax.make(final)
            cheap_i.append_name(" initial")
            cheap_f.append_name(" final")
            cheap_interp = interpolate_job(cheap_i.output.structure, cheap_f.output.structure,
                                           neb_maker.settings.n_images,
                                           neb_maker.settings.interpolation)
            cheap_band = cheap_neb.make(cheap_interp.output)
            jobs += [cheap_i, cheap_f, cheap_interp, cheap_band]
            start_i, start_f = cheap_i.output.structure, cheap_f.output.structure
            warm_outputs = [cheap_i.output, cheap_f.output, cheap_band.output]
        relax_i = relax.make(start_i)
        relax_i.append_name(" initial")
        relax_f = relax.make(start_f)
        relax_f.append_name(" final")
        if cheap is None:
            band = interpolate_job(relax_i.output.structure, relax_f.output.structure,
                                   neb_maker.settings.n_images, neb_maker.settings.interpolation)
        else:
            band = carry_band_job(jobs[-1].output, relax_i.output.structure,
                                  relax_f.output.structure)
        neb = neb_maker.make(band.output)
        pre = pre_maker.make(neb.output)
        result = hop_result_job(hop, relax_i.output, relax_f.output, neb.output, pre.output,
                                self.calculator, warm_outputs)
        result.name = f"hop result {hop.get('event_key', '')}".strip()
        result.metadata["cache_key"] = cache_key(hop, initial, final, self.settings())
        result.metadata["event_key"] = hop.get("event_key")
        return Flow([*jobs, relax_i, relax_f, band, neb, pre, result], output=result.output,
                    name=f"{self.name} {hop.get('event_key', '')}".strip())


@job
def assemble_job(results: list, sections: dict, name: str, options: dict) -> dict:
    """Assemble the catalog from hop results (see :func:`assemble_catalog`).

    ``results``: :class:`~kmcflow.workflows.results.HopResult` models (the outputs of the hop
    flows) or their JSON dicts.
    """
    from kmcflow.workflows.assembly import assemble_catalog
    from kmcflow.workflows.results import HopResult

    records = [HopResult.model_validate(r).model_dump(mode="json") for r in results]
    catalog, report = assemble_catalog(records, sections, name=name, **options)
    return {"catalog": catalog, "report": report}


@dataclass
class CampaignFlowMaker(Maker):
    """One hop flow per hop, then the catalog assembly."""

    name: str = "kmcflow campaign"
    hop_maker: HopFlowMaker = field(default_factory=HopFlowMaker)

    def make(self, hops: list[tuple[Any, Any, dict[str, Any]]], sections: dict,
             catalog_name: str, options: dict | None = None) -> Flow:
        """``hops``: (initial, final, hop record) triples; ``sections``: lattice, hosts, ..."""
        flows = [self.hop_maker.make(i, f, h) for i, f, h in hops]
        assemble = assemble_job([fl.output for fl in flows], sections, catalog_name,
                                dict(options or {}))
        return Flow([*flows, assemble], output=assemble.output, name=self.name)
