"""Cluster profiles and batch scripts: shipped profiles, expected scripts, hostile values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from kmcflow.errors import SchedulerError
from kmcflow.hpc.profiles import load_profile, profile_from_dict, walltime_seconds
from kmcflow.hpc.scripts import array_range, check_job_name, render_script

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).parent / "expected"
WORKDIR = Path("/scratch/me/campaigns/cu_ni")
COMMAND = ["python", "-m", "kmcflow.hpc.task", str(WORKDIR), "{index}"]


@pytest.mark.parametrize("name", ["local_slurm", "generic_slurm", "generic_pbs"])
def test_shipped_profiles_give_the_checked_in_scripts(name):
    profile = load_profile(ROOT / "hpc_configs" / f"{name}.yaml")
    text = render_script(profile, "cu_ni_hops", WORKDIR, COMMAND, n_tasks=6)
    assert text == (EXPECTED / f"{name}_array.sh").read_text()
    result = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def test_array_syntax_per_scheduler():
    slurm = profile_from_dict({"name": "s", "scheduler": "slurm", "array_max_parallel": 3})
    pbs = profile_from_dict({"name": "p", "scheduler": "pbs"})
    assert array_range(6, slurm) == "0-5%3"
    assert array_range(0, slurm, [4, 1, 3]) == "1,3,4%3"
    assert array_range(6, pbs) == "0-5"
    with pytest.raises(SchedulerError, match="contiguous"):
        array_range(0, pbs, [1, 3])
    assert walltime_seconds("1-02:00:00") == 26 * 3600 and walltime_seconds(90) == 90


@pytest.mark.parametrize("name", ["a;rm -rf x", "$(touch pwned)", "x'y", 'x"y', "a\nb",
                                  "`id`", ""])
def test_hostile_job_names_are_refused(name):
    with pytest.raises(SchedulerError, match="job name"):
        check_job_name(name)


def test_pbs_job_names_start_with_a_letter():
    assert check_job_name("9hops") == "9hops"
    with pytest.raises(SchedulerError, match="job name"):
        check_job_name("9hops", "pbs")
    with pytest.raises(SchedulerError, match="job name"):
        check_job_name("hops\n")


@pytest.mark.parametrize(("field", "value", "words"), [
    ("partition", "debug;id", "cannot take"),
    ("modules", ["vasp/6 && id"], "cannot take"),
    ("walltime", "-01:00:00", "walltime"),
    ("walltime", 0, "walltime"),
    ("scheduler", "lsf", "scheduler"),
    ("environment", {"A B": "x"}, "shell name"),
    ("launchers", {"vasp": "srun vasp\nid"}, "one non-empty line"),
    # exported as KMCFLOW_GPAW_COMMAND, read by nothing: a 24-core GPAW job ran on one process
    ("launchers", {"gpaw": "gpaw -P 24 python"}, "inside the task's Python process"),
])
def test_hostile_or_bad_profile_values_are_one_line_errors(tmp_path, field, value, words):
    data = yaml.safe_load((ROOT / "hpc_configs" / "local_slurm.yaml").read_text())
    data[field] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SchedulerError) as info:
        load_profile(path)
    line = info.value.one_line()
    assert str(path) in line and "\n" not in line
    assert words in line or words in (info.value.field or "")


def test_quoted_values_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = f"$(touch {marker}); `touch {marker}` '\"; touch {marker}"
    profile = profile_from_dict({"name": "x", "scheduler": "slurm",
                                 "environment": {"EVIL": evil},
                                 "launchers": {"vasp": f"srun vasp_std; touch {marker}"}})
    text = render_script(profile, "job", tmp_path, ["printenv", "EVIL"])
    script = tmp_path / "job.sh"
    script.write_text(text.replace("set -euo pipefail\n", ""))
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert result.stdout.strip() == evil  # the exact string, not its expansion
    assert not marker.exists()
