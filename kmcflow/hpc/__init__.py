"""HPC campaigns: cluster profiles and batch scripts for SLURM and PBS (more to come).

- :mod:`~kmcflow.hpc.profiles`: ``hpc_configs/*.yaml`` validated on load;
- :mod:`~kmcflow.hpc.scripts`: array and single-job scripts with every value checked or quoted.

Submission, status, resume and collection on a scheduler are the rest of the HPC issue.
"""

from __future__ import annotations
