"""One settings model and one result model per calculation, shared by every path.

The settings of a relaxation, a band and a prefactor live in kmcflow.workflows.settings only:
the plain functions, the jobflow makers, the campaign file and the ``barrier`` flags all take
their defaults from there. The hop result is a model whose JSON is the files' JSON.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from monty.json import MontyDecoder, MontyEncoder
from pydantic import ValidationError

from kmcflow.errors import ConfigError
from kmcflow.workflows.campaign import CampaignSpec, load_campaign
from kmcflow.workflows.flows import HopFlowMaker, cache_key
from kmcflow.workflows.makers import NebMaker, PrefactorMaker, RelaxMaker
from kmcflow.workflows.results import HopResult, PrefactorResult
from kmcflow.workflows.settings import NebSettings, PrefactorSettings, RelaxSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "kmcflow"
DATA = ROOT / "tests" / "data"
EXAMPLE = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"

CHECK_ONE_PLACE = r"""
import json, sys
import kmcflow
assert kmcflow.__file__.startswith(sys.argv[1]), kmcflow.__file__  # the edited copy
from kmcflow.cli import main
from kmcflow.workflows.calculators import load_calculator_config
from kmcflow.workflows.campaign import load_campaign
from kmcflow.workflows.flows import HopFlowMaker
from kmcflow.workflows.hop import compute_hop
from kmcflow.workflows.makers import NebMaker
from kmcflow.workflows.reference_hops import au_on_al100
from kmcflow.workflows.settings import RelaxSettings
from ase.io import write

ini, fin = au_on_al100()
function = compute_hop(ini, fin, load_calculator_config("emt"),
                       relax=RelaxSettings(enabled=False), workdir=sys.argv[2] + "/work")
write(sys.argv[2] + "/ini.extxyz", ini)
write(sys.argv[2] + "/fin.extxyz", fin)
code = main(["barrier", sys.argv[2] + "/ini.extxyz", sys.argv[2] + "/fin.extxyz",
             "--no-relax", "--out", sys.argv[2] + "/cli"])
cli = json.load(open(sys.argv[2] + "/cli/result.json"))
flow = HopFlowMaker().make(*[__import__("pymatgen.io.ase", fromlist=["x"]).AseAtomsAdaptor
                             .get_structure(a) for a in (ini, fin)])
interpolate = next(j for j in flow.jobs if j.name == "interpolate_job")
print(json.dumps({
    "function": [function.neb_settings["n_images"], len(function.energies_eV) - 2],
    "cli": [code, cli["neb_settings"]["n_images"], len(cli["energies_eV"]) - 2],
    "maker": NebMaker().settings.n_images,
    "flow": interpolate.function_args[2],
    "campaign": load_campaign(sys.argv[3]).neb.n_images,
    "campaign_section": load_campaign(sys.argv[4]).neb.n_images,
}))
"""


def test_one_neb_default_changes_the_function_maker_campaign_and_cli(tmp_path):
    """Edit the image count's default in settings.py of a copy of the package, nowhere else:
    compute_hop, kmcflow barrier, NebMaker, the hop flow and a campaign file all use it."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "kmcflow", ignore=shutil.ignore_patterns("__pycache__"))
    settings = src / "kmcflow" / "workflows" / "settings.py"
    text = settings.read_text()
    assert text.count("n_images: int = Field(4,") == 1
    settings.write_text(text.replace("n_images: int = Field(4,", "n_images: int = Field(6,"))
    base = EXAMPLE.read_text()
    assert "neb:" in base
    no_neb = tmp_path / "no_neb.yaml"
    no_neb.write_text("\n".join(ln for ln in base.splitlines() if not ln.startswith("neb:")))
    partial = tmp_path / "partial.yaml"
    partial.write_text("\n".join(ln if not ln.startswith("neb:") else
                                 "neb: {fmax_eV_per_A: 0.05}" for ln in base.splitlines()))
    env = {**os.environ, "PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", CHECK_ONE_PLACE, str(src), str(tmp_path),
                           str(no_neb), str(partial)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"function": [6, 6], "cli": [0, 6, 6], "maker": 6, "flow": 6,
                    "campaign": 6, "campaign_section": 6}
    # and this (unedited) package still has its own default
    assert NebSettings().n_images == NebMaker().settings.n_images == 4


SETTING_NAMES = {"n_images", "fmax_eV_per_A", "plain_fmax_eV_per_A", "spring_eV_per_A2",
                 "endpoint_tolerance_eV", "interpolation", "radius_A", "delta_A",
                 "allow_fallback"}


def _defaults_outside_settings() -> list[str]:
    """Class fields and function parameters named like a setting that carry a default."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "workflows" / "settings.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    target = (stmt.target if isinstance(stmt, ast.AnnAssign) else
                              stmt.targets[0] if isinstance(stmt, ast.Assign) else None)
                    value = getattr(stmt, "value", None)
                    if isinstance(target, ast.Name) and target.id in SETTING_NAMES and \
                            value is not None:
                        found.append(f"{path.relative_to(ROOT)}:{stmt.lineno} {target.id}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                positional = args.posonlyargs + args.args
                pairs = list(zip(positional[len(positional) - len(args.defaults):],
                                 args.defaults, strict=True))
                pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                          if d is not None]
                for arg, default in pairs:
                    if arg.arg in SETTING_NAMES and not (isinstance(default, ast.Constant)
                                                         and default.value is None):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {arg.arg}")
    return found


def test_the_duplicate_settings_and_results_are_gone():
    import kmcflow.workflows.campaign as campaign
    import kmcflow.workflows.hop as hop
    import kmcflow.workflows.makers as makers
    import kmcflow.workflows.neb as neb
    import kmcflow.workflows.prefactor as prefactor

    for module, names in ((campaign, ("NebSpec", "RelaxSpec", "PrefactorSpec")),
                          (makers, ("PrefactorDoc",)), (neb, ("NebOutcome",)),
                          (prefactor, ("PrefactorOutcome",)),
                          (hop, ("RelaxOutcome", "HopComputation", "result_record"))):
        for name in names:
            assert not hasattr(module, name), f"{module.__name__}.{name}"
    # the models are importable from where they were, and are the same class
    assert neb.NebSettings is NebSettings
    assert hop.RelaxSettings is RelaxSettings and hop.PrefactorSettings is PrefactorSettings
    for section, model in (("neb", NebSettings), ("relax", RelaxSettings),
                           ("prefactor", PrefactorSettings)):
        assert CampaignSpec.model_fields[section].annotation is model
    assert _defaults_outside_settings() == []


def test_the_check_of_defaults_outside_settings_finds_one(tmp_path, monkeypatch):
    """The scan above is not vacuous: a class field with a band default is found."""
    (tmp_path / "kmcflow" / "workflows").mkdir(parents=True)
    (tmp_path / "kmcflow" / "workflows" / "other.py").write_text(
        "class Band:\n    fmax_eV_per_A: float = 0.05\n\n"
        "def run(n_images=4, radius_A=None):\n    pass\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "kmcflow")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _defaults_outside_settings() == ["kmcflow/workflows/other.py:2 fmax_eV_per_A",
                                            "kmcflow/workflows/other.py:4 n_images"]


@pytest.mark.parametrize(("section", "words", "field"), [
    ("neb: {n_images: 0}", "1 to 64 intermediate images", "neb.n_images"),
    ("neb: {optimizer: LBFGS}", "'auto', 'FIRE', 'BFGS' or 'MDMin'", "neb.optimizer"),
    ("neb: {fmax_eV_per_A: .nan}", "finite number", "neb.fmax_eV_per_A"),
    ("neb: {nimages: 4}", "known fields: n_images", "neb.nimages"),
    ("relax: {steps: 0}", "greater than or equal to 1", "relax.steps"),
    ("prefactor: {delta_A: -0.01}", "greater than 0", "prefactor.delta_A"),
])
def test_a_bad_setting_in_a_campaign_names_the_file_and_field(tmp_path, section, words, field):
    text = "\n".join(ln for ln in EXAMPLE.read_text().splitlines()
                     if not ln.startswith(section.split(":")[0] + ":"))
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n" + section + "\n")
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    line = info.value.one_line()
    assert line.startswith(f"{path}: {field}: ") and words in line and "\n" not in line


def test_every_setting_may_be_set_from_a_campaign_file(tmp_path):
    text = "\n".join(ln for ln in EXAMPLE.read_text().splitlines()
                     if not ln.startswith(("neb:", "relax:", "prefactor:")))
    neb = NebSettings(n_images=6, symmetric=True, batched=False, interpolation="linear",
                      endpoint_tolerance_eV=0.02, optimizer="FIRE")
    relax = RelaxSettings(enabled=False, steps=10)
    prefactor = PrefactorSettings(delta_A=0.02, radius_A=2.6, allow_fallback=True)
    path = tmp_path / "c.yaml"
    path.write_text(text + f"\nneb: {json.dumps(neb.model_dump())}\n"
                    f"relax: {json.dumps(relax.model_dump())}\n"
                    f"prefactor: {json.dumps(prefactor.model_dump())}\n")
    spec = load_campaign(path)
    assert (spec.neb, spec.relax, spec.prefactor) == (neb, relax, prefactor)


def test_settings_are_frozen_and_refuse_nan_and_unknown_fields():
    with pytest.raises(ValidationError):
        NebSettings().n_images = 6  # type: ignore[misc]
    for bad in ({"fmax_eV_per_A": float("inf")}, {"spring_eV_per_A2": 0}, {"nimages": 4},
                {"n_images": 65}, {"method": "nope"}):
        with pytest.raises(ValidationError):
            NebSettings(**bad)
    schema = NebSettings.model_json_schema()["properties"]
    assert schema["n_images"]["minimum"] == 1 and schema["fmax_eV_per_A"]["exclusiveMinimum"] == 0


def _round_trip(maker):
    text = json.dumps(maker.as_dict(), cls=MontyEncoder)
    back = json.loads(text, cls=MontyDecoder)
    assert json.loads(json.dumps(back.as_dict(), cls=MontyEncoder)) == json.loads(text)
    return back


def test_makers_take_the_models_and_serialise_through_monty():
    neb = NebSettings(n_images=6, steps=11, symmetric=True)
    relax = RelaxSettings(fmax_eV_per_A=0.1, steps=7)
    prefactor = PrefactorSettings(radius_A=2.6)
    for maker, settings in ((NebMaker(settings=neb), neb), (RelaxMaker(settings=relax), relax),
                            (PrefactorMaker(settings=prefactor), prefactor)):
        back = _round_trip(maker)
        assert type(back) is type(maker) and back.settings == settings
        assert type(back.settings) is type(settings)
    # atomate2 reads the relaxation's steps and fmax: they follow the settings
    maker = RelaxMaker(settings=relax)
    assert (maker.steps, maker.relax_kwargs["fmax"]) == (7, 0.1)
    assert RelaxMaker(settings=RelaxSettings(enabled=False)).steps == 0
    # a mapping (a hand-written flow file) becomes the model
    assert NebMaker(settings={"n_images": 2}).settings == NebSettings(n_images=2)
    # a whole job (the maker bound to its function) too
    job = NebMaker(settings=neb).make([])
    back = json.loads(json.dumps(job.as_dict(), cls=MontyEncoder), cls=MontyDecoder)
    assert back.function.__self__.settings == neb


def test_the_cache_key_follows_every_setting(cu_vacancy_endpoints):
    from pymatgen.io.ase import AseAtomsAdaptor

    ini, fin = (AseAtomsAdaptor.get_structure(a) for a in cu_vacancy_endpoints)
    hop = {"event_key": "Cu/Cu->Cu"}

    def key(**makers):
        return cache_key(hop, ini, fin, HopFlowMaker(**makers).settings())

    base = key()
    assert base == key() == key(neb_maker=NebMaker(settings=NebSettings()))
    changed = {key(neb_maker=NebMaker(settings=NebSettings(n_images=6))),
               key(neb_maker=NebMaker(settings=NebSettings(interpolation="linear"))),
               key(neb_maker=NebMaker(settings=NebSettings(symmetric=True))),
               key(relax_maker=RelaxMaker(settings=RelaxSettings(steps=10))),
               key(prefactor_maker=PrefactorMaker(settings=PrefactorSettings(delta_A=0.02)))}
    assert base not in changed and len(changed) == 5


@pytest.mark.parametrize("name", ["barrier_result_0.json", "campaign_hop_result_0.json"])
def test_results_written_before_the_model_are_read_and_written_back_unchanged(name):
    """Recorded with the code before HopResult existed: `kmcflow barrier` on the Au/Al(100)
    hop with EMT, and hop 0 of examples/campaigns/cu_ni_emt.yaml from `campaign run`."""
    old = json.loads((DATA / name).read_text())
    result = HopResult.model_validate(old)
    assert result.succeeded and isinstance(result.prefactor, PrefactorResult)
    assert result.model_dump(mode="json") == old
    assert list(result.model_dump(mode="json")) == list(old)  # the same keys, in order


def test_a_failed_job_record_is_a_hop_result_too():
    record = {"hop": {"event_key": "Cu/Ni->Ni"}, "event_key": "Cu/Ni->Ni",
              "failure_reason": "job_error", "failure_message": "job 'x' raised ValueError",
              "exception": {"type": "ValueError"}, "job_index": 3}
    result = HopResult.model_validate(record)
    assert not result.succeeded and result.exception == {"type": "ValueError"}
    assert set(record) <= set(result.model_dump(mode="json"))
    assert "job_id" not in result.model_dump(mode="json")  # bookkeeping only when set
    schema = HopResult.model_json_schema()
    assert {"forward_barrier_eV", "prefactor", "failure_reason"} <= set(schema["properties"])


def test_compute_hop_returns_the_model_the_files_hold(au_al_endpoints, tmp_path):
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.hop import compute_hop

    result = compute_hop(*au_al_endpoints, load_calculator_config("emt"), workdir=tmp_path,
                         relax=RelaxSettings(enabled=False))
    assert isinstance(result, HopResult) and result.succeeded
    old = json.loads((DATA / "barrier_result_0.json").read_text())
    assert list(result.model_dump(mode="json")) == list(old)
    assert len(result.band.atoms()) == NebSettings().n_images + 2
    assert result.neb_settings["n_images"] == NebSettings().n_images


def test_a_maker_refuses_settings_it_would_ignore():
    """atomate2's steps and relax fmax are read from settings: another value is refused."""
    from kmcflow.errors import ConfigError
    from kmcflow.workflows.makers import NebMaker, PrefactorMaker, RelaxMaker

    refused = [(lambda: NebMaker(steps=10), "steps"), (lambda: RelaxMaker(steps=5), "steps"),
               (lambda: RelaxMaker(relax_kwargs={"fmax": 0.001}), "fmax"),
               (lambda: NebMaker(settings="nonsense"), "settings"),
               (lambda: PrefactorMaker(settings=5), "settings")]
    for make, field in refused:
        with pytest.raises(ConfigError) as caught:
            make()
        assert caught.value.field == field
    assert RelaxMaker(settings=RelaxSettings(steps=7)).steps == 7
    assert RelaxMaker(steps=RelaxSettings().steps).steps == RelaxSettings().steps  # agrees
