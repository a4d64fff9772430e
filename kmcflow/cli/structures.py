"""Command-line commands of the structures stage: ``bulk``, ``interface`` and ``hops``.

Thin like the rest of the CLI: parse, call :mod:`kmcflow.structures`, print. pymatgen is
imported only when one of these commands runs, so the kMC commands never need it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out, progress_bar
from kmcflow.errors import StructureError

bulk_app = typer.Typer(no_args_is_help=True, help="The bundled bulk crystals.")
interface_app = typer.Typer(no_args_is_help=True,
                            help="Coherent interface slabs between two bulk crystals.")

StructureArg = Annotated[str, typer.Argument(
    help="Bulk crystal: a CIF/POSCAR/extxyz/pymatgen-JSON file or a bundled name (see "
         "`kmcflow bulk list`).", show_default=False)]
Miller = tuple[int, int, int]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON records instead of a table.")]


def _need_structures_extra() -> None:
    try:
        import pymatgen.core  # noqa: F401
        import spglib  # noqa: F401
    except ImportError as exc:
        raise StructureError("the structure commands need pymatgen and spglib",
                             hint="pip install 'kmcflow[structures]'") from exc


def _species_list(text: str) -> list[str]:
    items = [s.strip() for s in text.replace(" ", ",").split(",") if s.strip()]
    if not items:
        raise StructureError("no species given", field="--species", hint="e.g. --species Li")
    return items


@bulk_app.command("list")
def bulk_list(as_json: JsonOpt = False) -> None:
    """List the bundled crystals with space group, lattice constants and reference."""
    _need_structures_extra()
    from kmcflow.structures.bulk import bundled_entry, bundled_names

    rows = []
    for name in bundled_names():
        e = bundled_entry(name)
        rows.append({"name": name, "space_group": e["space_group"], "lattice": e["lattice"],
                     "n_atoms": e["n_atoms"], "reference": e["reference"]})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "space group", "lattice (Angstrom)", "atoms", "reference")
    for r in rows:
        lat = ", ".join(f"{k.removesuffix('_A')}={v}" for k, v in r["lattice"].items())
        table.add_row(r["name"], r["space_group"], lat, str(r["n_atoms"]), r["reference"])
    out.print(table)


@bulk_app.command("show")
def bulk_show(
    structure: StructureArg,
    write: Annotated[Path | None, typer.Option(
        "--out", help="Also write it: .cif, .vasp (POSCAR), .extxyz or .json.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out "
                                            "file.")] = False,
) -> None:
    """Print a crystal's cell, space group and sites; optionally write it to a file."""
    _need_structures_extra()
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from kmcflow.atomic_io import atomic_path
    from kmcflow.outputs import check_output_file
    from kmcflow.structures.io import read_structure

    if write is not None:
        if write.suffix.lower() not in (".cif", ".vasp", ".json", ".extxyz"):
            raise StructureError("unknown output type", file=str(write), field="--out",
                                 hint="use .cif, .vasp, .extxyz or .json")
        check_output_file(write, overwrite=overwrite, inputs=[structure])
    lab = read_structure(structure)
    s = lab.structure
    try:
        sga = SpacegroupAnalyzer(s, symprec=0.01)
        group = f"{sga.get_space_group_symbol()} (No. {sga.get_space_group_number()})"
    except Exception:  # spglib finds no group for some cells: say so, show the rest
        group = "space group undetermined"
    out.print(f"[bold]{lab.name}[/bold]: {s.composition.reduced_formula}, {group}, "
              f"{len(s)} atoms, from {lab.source}")
    a, b, c = s.lattice.abc
    al, be, ga = s.lattice.angles
    out.print(f"a={a:.5f} b={b:.5f} c={c:.5f} Angstrom, alpha={al:.3f} beta={be:.3f} "
              f"gamma={ga:.3f} deg")
    ref = (s.properties or {}).get("reference")
    if ref:
        out.print(f"reference: {ref}")
    if write is not None:
        suffix = write.suffix.lower()
        fmt = {".cif": "cif", ".vasp": "poscar", ".json": "json", ".extxyz": "extxyz"}.get(suffix)
        if fmt is None:
            raise StructureError("unknown output type", file=str(write),
                                 hint="use .cif, .vasp, .extxyz or .json")
        plain = s.copy()
        plain.remove_site_property("host")
        with atomic_path(write, suffix=suffix) as tmp:
            if fmt == "extxyz":
                from ase.io import write as ase_write
                from pymatgen.io.ase import AseAtomsAdaptor

                ase_write(tmp, AseAtomsAdaptor.get_atoms(plain), format="extxyz")
            else:
                plain.to(filename=str(tmp), fmt=fmt)
        out.print(f"wrote {write}")


def _search(film, substrate, film_miller, substrate_miller, max_strain, max_area, max_atoms,
            film_thickness, substrate_thickness):
    from kmcflow.structures.interface import MatchLimits, find_matches
    from kmcflow.structures.io import read_structure

    f = read_structure(film)
    s = read_structure(substrate)
    limits = MatchLimits(max_strain=max_strain, max_area_A2=max_area, max_atoms=max_atoms)
    with err.status("searching lattice matches (pymatgen ZSL)"):
        return find_matches(f, s, film_miller, substrate_miller, limits=limits,
                            film_thickness=film_thickness,
                            substrate_thickness=substrate_thickness)


FilmArg = Annotated[str, typer.Argument(help="Film bulk crystal (file or bundled name); it is "
                                        "strained onto the substrate.", show_default=False)]
SubstrateArg = Annotated[str, typer.Argument(help="Substrate bulk crystal (file or bundled "
                                             "name).", show_default=False)]
FilmMiller = Annotated[Miller, typer.Option("--film-miller", help="Film plane, h k l.",
                                            show_default=False)]
SubMiller = Annotated[Miller, typer.Option("--substrate-miller", help="Substrate plane, h k l.",
                                           show_default=False)]
MaxStrain = Annotated[float, typer.Option("--max-strain", help="Largest film strain, as a "
                                          "fraction (0.05 = 5 %).")]
MaxArea = Annotated[float, typer.Option("--max-area", help="Largest interface cell area "
                                        "searched, Angstrom^2.")]
MaxAtoms = Annotated[int, typer.Option("--max-atoms", help="Largest interface, in atoms.")]
FilmThick = Annotated[str, typer.Option("--film-thickness", help="At least this much film: "
                                        "12A (Angstrom) or 6layers.")]
SubThick = Annotated[str, typer.Option("--substrate-thickness", help="At least this much "
                                       "substrate: 12A (Angstrom) or 6layers.")]


@interface_app.command("matches")
def interface_matches(
    film: FilmArg,
    substrate: SubstrateArg,
    film_miller: FilmMiller,
    substrate_miller: SubMiller,
    max_strain: MaxStrain = 0.05,
    max_area: MaxArea = 80.0,
    max_atoms: MaxAtoms = 400,
    film_thickness: FilmThick = "10A",
    substrate_thickness: SubThick = "10A",
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the coherent matches of FILM on SUBSTRATE (strain, area, atoms) and terminations.

    Example: kmcflow interface matches MgO NiO --film-miller 1 0 0 --substrate-miller 1 0 0
    """
    _need_structures_extra()
    if limit < 1:
        raise StructureError(f"--limit must be at least 1, got {limit}", field="--limit")
    search = _search(film, substrate, film_miller, substrate_miller, max_strain, max_area,
                     max_atoms, film_thickness, substrate_thickness)
    shown = search.matches[:limit]
    if as_json:
        print(json.dumps([{**m.record(), "terminations": [list(t) for t in search.terminations]}
                          for m in shown], indent=2))
        return
    table = Table("match", "strain %", "principal strains %", "von Mises", "area A^2", "atoms",
                  "angle", title=f"{search.film.name}{list(search.film_miller)} on "
                  f"{search.substrate.name}{list(search.substrate_miller)}")
    for m in shown:
        table.add_row(str(m.index), f"{100 * m.strain:+.3f}",
                      " ".join(f"{100 * x:+.3f}" for x in m.strain_components),
                      f"{m.von_mises_strain:.4f}", f"{m.area_A2:.2f}", str(m.n_atoms),
                      f"{m.angle_deg:.1f}")
    out.print(table)
    out.print(f"{len(search.matches)} distinct matches within the limits "
              f"({search.n_raw_matches} from pymatgen); terminations (film, substrate):")
    for k, t in enumerate(search.terminations):
        out.print(f"  {k}: {t[0]} | {t[1]}")


@interface_app.command("build")
def interface_build(
    film: FilmArg,
    substrate: SubstrateArg,
    film_miller: FilmMiller,
    substrate_miller: SubMiller,
    write: Annotated[Path, typer.Option("--out", help="Output stem: writes STEM.json (pymatgen "
                                        "Interface), STEM.extxyz and STEM.png.",
                                        show_default=False)],
    match: Annotated[int, typer.Option("--match", help="Match index from `matches`.")] = 0,
    termination: Annotated[int, typer.Option("--termination", help="Termination index.")] = 0,
    film_thickness: FilmThick = "10A",
    substrate_thickness: SubThick = "10A",
    allow_like_ions_facing: Annotated[bool, typer.Option(
        "--allow-like-ions-facing", help="Build an ionic interface even when like ions face "
        "each other across it (polar terminations).")] = False,
    gap: Annotated[float | None, typer.Option(
        "--gap", help="Film-substrate separation, Angstrom (default: mean bulk interlayer "
        "spacing).")] = None,
    vacuum: Annotated[float, typer.Option(
        "--vacuum", help="Vacuum above the film, Angstrom; 0 builds a periodic bi-crystal.")
    ] = 15.0,
    fixed_layers: Annotated[int | None, typer.Option(
        "--fixed-layers", help="Bottom substrate layers to fix (default 2 in a slab, 0 in a "
        "bi-crystal).")] = None,
    max_strain: MaxStrain = 0.05,
    max_area: MaxArea = 80.0,
    max_atoms: MaxAtoms = 400,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")
                         ] = False,
) -> None:
    """Build one interface of FILM on SUBSTRATE and write it (JSON, extxyz, PNG side view).

    Example: kmcflow interface build Cu Ni --film-miller 1 0 0 --substrate-miller 1 0 0 --out cu_ni
    """
    _need_structures_extra()
    from kmcflow.outputs import check_output_file
    from kmcflow.structures.interface import build_interface
    from kmcflow.structures.io import write_extxyz, write_json_structure
    from kmcflow.structures.plots import plot_side_view

    stem = write.with_suffix("") if write.suffix in (".json", ".extxyz", ".png") else write
    targets = [stem.with_name(stem.name + ext) for ext in (".json", ".extxyz", ".png")]
    for target in targets:
        check_output_file(target, overwrite=overwrite, inputs=[film, substrate])
    if not 0 <= vacuum <= 1000:
        raise StructureError(f"vacuum must be 0 (bi-crystal) or a positive number of Angstrom "
                             f"up to 1000, got {vacuum}", field="--vacuum", hint="e.g. 15")
    if vacuum != 0 and vacuum < 15.0:
        err.print(f"[yellow]note:[/yellow] {vacuum:g} A of vacuum is below the 15 A of the "
                  "reference slab protocol")
    search = _search(film, substrate, film_miller, substrate_miller, max_strain, max_area,
                     max_atoms, film_thickness, substrate_thickness)
    iface = build_interface(search, match_index=match, termination_index=termination,
                            gap_A=gap, vacuum_A=vacuum, fixed_layers=fixed_layers,
                            allow_like_ions_facing=allow_like_ions_facing)
    write_json_structure(iface, targets[0])
    write_extxyz(iface, targets[1])
    plot_side_view(iface, targets[2])
    info = iface.interface
    m = info.match
    out.print(f"[bold]{iface.name}[/bold]: {len(iface.structure)} atoms, match {m['index']} "
              f"(strain {m['strain_percent']:+.3f} %, area {m['area_A2']:.2f} A^2), "
              f"{'periodic bi-crystal' if info.periodic_bicrystal else 'slab'}")
    out.print(f"substrate {info.substrate_name}: {info.substrate_layers} layers "
              f"({info.fixed_layers} fixed); film {info.film_name}: {info.film_layers} layers; "
              f"gap {info.gap_A:.3f} A; vacuum {info.vacuum_A:g} A")
    for t in targets:
        out.print(f"wrote {t}")


@interface_app.command("lattice")
def interface_lattice(
    structure: Annotated[str, typer.Argument(help="Interface JSON/extxyz from `interface "
                                             "build`, or a bulk crystal.", show_default=False)],
    species: Annotated[str, typer.Option("--species", help="Cation species of the kMC lattice "
                                         "(comma separated), e.g. Cu,Ni.", show_default=False)],
    band_thickness: Annotated[float, typer.Option(
        "--band-thickness", help="Interface band of the catalog, Angstrom.")] = 0.0,
) -> None:
    """Print the catalog sections (lattice, hosts, interface) that a structure fixes, as JSON."""
    _need_structures_extra()
    from kmcflow.structures.io import read_structure
    from kmcflow.structures.sublattice import catalog_sections

    lab = read_structure(structure)
    print(json.dumps(catalog_sections(lab, _species_list(species),
                                      band_thickness_A=band_thickness), indent=2))


def hops_command(
    structure: Annotated[str, typer.Argument(help="A bulk crystal (file or bundled name) or an "
                                             "interface from `interface build`.",
                                             show_default=False)],
    species: Annotated[str, typer.Option("--species", help="Mobile species, comma separated.",
                                         show_default=False)],
    write: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the NEB endpoints and hops.json (must not exist).")] = None,
    network: Annotated[str | None, typer.Option(
        "--network", help="Species whose sites a hop may end on (default: the mobile species, "
        "plus the cations of a host without it).")] = None,
    max_length: Annotated[float | None, typer.Option(
        "--max-length", help="Every hop up to this length (Angstrom) instead of the first "
        "shell.")] = None,
    shell_tolerance: Annotated[float, typer.Option(
        "--shell-tolerance", help="Relative width of the first neighbour shell.")] = 0.1,
    band_thickness: Annotated[float, typer.Option(
        "--band-thickness", help="Sites this close (Angstrom) to the interface form the "
        "host:interface regions of the event keys.")] = 0.0,
    min_image_distance: Annotated[float, typer.Option(
        "--min-image-distance", help="Smallest distance between vacancy images in the "
        "endpoint supercells, Angstrom.")] = 8.0,
    max_atoms: Annotated[int, typer.Option("--max-atoms", help="Largest endpoint supercell.")
                         ] = 600,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out "
                                            "folder (once the new one is complete).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the symmetry-distinct vacancy hops and write their NEB endpoints.

    Example: kmcflow hops LiFePO4 --species Li --out hops_lfp
    """
    _need_structures_extra()
    from kmcflow.structures.endpoints import write_hops
    from kmcflow.structures.hops import enumerate_hops
    from kmcflow.structures.io import read_structure

    lab = read_structure(structure)
    hopset = enumerate_hops(lab, _species_list(species),
                            network_species=_species_list(network) if network else None,
                            shell_tolerance=shell_tolerance, max_length_A=max_length,
                            band_thickness_A=band_thickness)
    records = [h.record() | {"initial_file": None, "final_file": None} for h in hopset.hops]
    if write is not None:

        with progress_bar() as progress:
            task = progress.add_task("endpoints", total=len(hopset.hops), info="")
            manifest = write_hops(lab, hopset, write, min_image_distance_A=min_image_distance,
                                  max_atoms=max_atoms, overwrite=overwrite,
                                  progress=lambda hop: progress.update(
                                      task, advance=1, info=f"hop {hop.index}"))
        records = [r | {"initial_file": str(write / r["initial_file"]),
                        "final_file": str(write / r["final_file"])} for r in manifest["hops"]]
    if as_json:
        print(json.dumps(records, indent=2))
        return
    kind = "interface" if lab.is_interface else "bulk"
    table = Table("hop", "species", "length A", "mult.", "band",
                  title=f"{lab.name} ({kind}): {len(hopset.hops)} distinct hops of "
                  f"{hopset.n_directed_hops}, {hopset.n_symmetry_operations} symmetry "
                  "operations")
    table.add_column("event key (species/from->to region)", overflow="fold")
    for h in hopset.hops:
        table.add_row(str(h.index), h.species, f"{h.length_A:.3f}", str(h.multiplicity),
                      "bulk" if h.band is None else str(h.band), h.event_key)
    out.print(table)
    if write is not None:
        out.print(f"wrote {len(records)} endpoint pairs and hops.json to {write}")
