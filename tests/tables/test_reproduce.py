"""kmcflow reproduce: rates recomputed from barriers, detailed balance, recipes, export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog
from kmcflow.tables.check import check_pairs, check_row
from kmcflow.tables.table import read_table

ROOT = Path(__file__).resolve().parents[2]
TABLES = ROOT / "examples" / "tables"
K_B = 8.617333262e-5  # eV/K (CODATA 2018)


def _records(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["reproduce", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["source_study_interface.yaml", "source_study_interface.csv"])
def test_source_table_flags_exactly_the_four_inconsistent_rates(name, capsys):
    records = {r["event"]: r for r in _records(capsys, TABLES / name)}
    published = {"Li hop": (0.25, 1.2e13, 2.1e9), "Na hop": (0.30, 1.0e13, 2.1e7),
                 "Li into Na site": (0.75, 1.0e13, 2.9e-5),
                 "Na into Li site": (0.80, 1.0e13, 1.7e-6)}
    for event, (ea, nu, k) in published.items():
        r = records[event]
        expected = nu * math.exp(-ea / (K_B * 300.0))
        assert r["computed_rate"] == pytest.approx(expected, rel=1e-12)
        assert r["ratio"] == pytest.approx(k / expected, rel=1e-12)
        assert r["consistent"] is False
        # the explaining temperature reproduces the published rate exactly
        t_star = r["explaining_temperature_K"]
        assert nu * math.exp(-ea / (K_B * t_star)) == pytest.approx(k, rel=1e-9)
    assert records["Li hop"]["ratio"] == pytest.approx(2.772, abs=1e-3)
    assert records["Na into Li site"]["explaining_temperature_K"] == pytest.approx(214.8, abs=0.1)
    exchange = records["Li/Ni exchange"]
    assert exchange["consistent"] is True and exchange["published_rate_is_zero"]
    assert exchange["computed_rate"] < 1e-28


def test_human_output_names_the_factor_and_temperature(capsys):
    assert main(["reproduce", str(TABLES / "source_study_interface.yaml")]) == 0
    text = capsys.readouterr().out
    assert "4 of 5 rows disagree" in text and "335.4 K" in text and "2.77 x" in text


def test_export_replaces_the_template_events_and_loads(tmp_path, capsys):
    target = tmp_path / "li_na.json"
    _records(capsys, TABLES / "source_study_interface.yaml", "--export", target)
    catalog = load_catalog(target)
    by_key = {e.key: e for e in catalog.events}
    assert by_key["Li/Li_host->Li_host"].barrier_eV == 0.25
    assert by_key["Li/Li_host->Li_host"].prefactor_Hz == 1.2e13
    assert "row 1 'Li hop'" in by_key["Li/Li_host->Li_host"].provenance.notes


def test_detailed_balance_of_declared_pairs(tmp_path):
    path = tmp_path / "pair.yaml"
    kt = K_B * 500.0
    k_f, k_r = 1e13 * math.exp(-0.5 / kt), 1e13 * math.exp(-0.3 / kt)
    path.write_text(
        "rows:\n"
        f"  - {{event: out, barrier_eV: 0.5, prefactor_Hz: 1e13, rate_per_s: {k_f!r}, "
        "temperature_K: 500, reaction_energy_eV: 0.2}\n"
        f"  - {{event: back, barrier_eV: 0.3, prefactor_Hz: 1e13, rate_per_s: {k_r * 3!r}, "
        "temperature_K: 500, reverse_of: out}\n")
    table = read_table(path)
    (pair,) = check_pairs(table)
    assert pair["barrier_difference_eV"] == pytest.approx(0.2)
    assert pair["rate_ratio_arrhenius"] == pytest.approx(math.exp(-0.2 / kt))
    assert pair["consistent"] is False and "k_f/k_r" in pair["problems"][0]
    assert check_row(table.rows[0])["consistent"] is True
    text = path.read_text().replace("reaction_energy_eV: 0.2", "reaction_energy_eV: 0.0")
    path.write_text(text.replace(f"{k_r * 3!r}", f"{k_r!r}"))
    (pair,) = check_pairs(read_table(path))
    assert pair["consistent"] is False and "reaction energy" in pair["problems"][0]


def test_emt_table_recomputes_the_tutorial_barrier(capsys):
    pytest.importorskip("ase")
    (rec,) = _records(capsys, TABLES / "ase_emt_au_al100.yaml")
    assert rec["published_barrier_eV"] == 0.374
    assert rec["computed_barrier_eV"] == pytest.approx(0.374, abs=0.005)
    assert abs(rec["barrier_difference_eV"]) < 0.005 and rec["consistent"] is None


@pytest.mark.parametrize(("text", "words"), [
    ("event,barrier_eV,prefactor_Hz,temperature_K\nx,0.3,1e13,300\n", "missing column 'rate'"),
    ("event,barrier_eVs,prefactor_Hz,rate_per_s,temperature_K\nx,0.3,1e13,1,300\n",
     "unknown unit 'eVs'"),
    ("event,barrier_eV,prefactor_Hz,rate_per_s,temperature_K\nx,-0.3,1e13,1,300\n",
     "negative barrier"),
    ("event,barrier_eV,prefactor_Hz,rate_per_s,temperature_K\nx,abc,1e13,1,300\n",
     "not a number"),
    ("event,barrier_eV,prefactor_Hz,rate_per_s,temperature_K\nx,0.3,1e13,1,-5\n",
     "above 0 K"),
])
def test_bad_tables_get_one_line_and_exit_2(tmp_path, capsys, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["reproduce", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and str(path) in err and len(err.splitlines()) == 1


@pytest.fixture
def downhill_recipe(tmp_path):
    """A recipe whose band has no saddle: an unrelaxed Cu vacancy cell into its relaxed self
    (endpoints not relaxed by the recipe), published as a 0.70 eV hop."""
    pytest.importorskip("ase")
    from ase.calculators.emt import EMT
    from ase.io import write
    from ase.optimize import BFGS

    from kmcflow.workflows.reference_hops import bulk_vacancy_hop

    start, _ = bulk_vacancy_hop("Cu", "Cu", 7.0)
    relaxed = start.copy()
    relaxed.calc = EMT()
    BFGS(relaxed, logfile=None).run(fmax=0.01)
    relaxed.calc = None
    write(tmp_path / "ini.extxyz", start)
    write(tmp_path / "fin.extxyz", relaxed)
    path = tmp_path / "downhill.yaml"
    path.write_text("rows:\n  - {event: downhill, barrier_eV: 0.70, prefactor_Hz: null, "
                    "rate_per_s: null, temperature_K: null,\n     recipe: {initial: ini.extxyz, "
                    "final: fin.extxyz, calculator: emt, n_images: 2, relax: false}}\n")
    return path


def test_a_failed_recipe_band_is_never_printed_as_a_barrier(downhill_recipe, capsys):
    """Issue 12, defect 2: it printed 'recomputed ... -0.0025 eV', neb_converged true, and
    '0 of 1 rows disagree'."""
    (rec,) = _records(capsys, downhill_recipe)
    assert rec["recompute_failure"] == "no_interior_maximum"
    assert "computed_barrier_eV" not in rec and "barrier_difference_eV" not in rec
    assert "no saddle" in rec["recompute_note"]
    capsys.readouterr()
    assert main(["reproduce", str(downhill_recipe)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "could not recompute 'downhill'" in text and "no_interior_maximum" in text
    assert "recomputed 'downhill'" not in text


def test_a_recomputed_barrier_off_the_published_one_disagrees(tmp_path, capsys):
    """The tutorial hop published as 0.45 eV: EMT gives 0.374, beyond the 0.05 eV default."""
    pytest.importorskip("ase")
    table = tmp_path / "off.yaml"
    table.write_text((TABLES / "ase_emt_au_al100.yaml").read_text().replace(
        "barrier_eV: 0.374", "barrier_eV: 0.45"))
    (rec,) = _records(capsys, table)
    assert rec["barrier_difference_eV"] == pytest.approx(-0.076, abs=0.005)
    assert rec["barrier_agrees"] is False and rec["disagrees"] is True
    (rec,) = _records(capsys, table, "--barrier-tolerance", "0.1")
    assert rec["barrier_agrees"] is True and rec["disagrees"] is False
    assert main(["reproduce", str(table)]) == 0
    assert "1 of 1 rows disagree" in capsys.readouterr().out


def test_a_recipe_whose_code_fails_is_a_noted_row_not_a_crash(tmp_path, capsys):
    """A calculator error while relaxing a recipe's endpoints aborted the whole table."""
    pytest.importorskip("ase")
    from ase.build import bulk
    from ase.io import write

    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    (pseudo / "Cu.pbe.UPF").write_text("")
    cell = bulk("Cu", cubic=True)
    write(tmp_path / "ini.extxyz", cell)
    moved = cell.copy()
    moved.positions[0] += [0.1, 0.0, 0.0]
    write(tmp_path / "fin.extxyz", moved)
    (tmp_path / "code.yaml").write_text(f"name: espresso\ncommand: 'false'\n"
                                        f"pseudo_dir: {pseudo}\n")
    table = tmp_path / "t.yaml"
    table.write_text("rows:\n  - {event: x, barrier_eV: 0.5, prefactor_Hz: null, "
                     "rate_per_s: null, temperature_K: null,\n     recipe: {initial: ini.extxyz,"
                     " final: fin.extxyz, calculator: code.yaml}}\n")
    (rec,) = _records(capsys, table)
    assert rec["recompute_failure"] == "calculator_error"
    assert "CalledProcessError" in rec["recompute_note"] and "computed_barrier_eV" not in rec


@pytest.mark.parametrize(("n_images", "words"), [("abc", "whole number"), ("[1]", "whole number"),
                                                 ("100000000", "intermediate images")])
def test_a_recipe_with_a_bad_setting_is_a_noted_row(tmp_path, capsys, n_images, words):
    """n_images: abc or [1] ended in a traceback, 1e8 images in a hang."""
    table = tmp_path / "t.yaml"
    table.write_text("rows:\n  - {event: x, barrier_eV: 0.374, prefactor_Hz: null, "
                     "rate_per_s: null, temperature_K: null,\n"
                     f"     recipe: {{name: ase_emt_au_al100, n_images: {n_images}}}}}\n")
    (rec,) = _records(capsys, table)
    assert words in rec["recompute_note"] and "computed_barrier_eV" not in rec


def test_a_recipe_that_could_not_run_is_not_a_confirmation(tmp_path):
    """A row whose recipe fails neither agrees nor disagrees: `confirmed` stays False."""
    from kmcflow.tables.reproduce import reproduce_table

    table = tmp_path / "t.yaml"
    table.write_text("name: t\nrows:\n  - event: a hop\n    barrier_eV: 0.374\n"
                     "    prefactor_Hz: null\n    rate_per_s: null\n    temperature_K: null\n"
                     "    recipe: {name: no_such_recipe}\n")
    result = reproduce_table(table)
    assert result.disagreeing == [] and not result.confirmed
    assert [r["event"] for r in result.not_recomputed] == ["a hop"]
    assert result.not_recomputed[0]["recompute_note"]
    assert reproduce_table(table, recompute=False).not_recomputed[0]["recompute_note"] == \
        "recipe not run (--no-recompute)"
