"""HPC campaigns: barrier campaigns as job arrays on SLURM and PBS, restartable after kills.

- :mod:`~kmcflow.hpc.profiles`: ``hpc_configs/*.yaml`` validated on load;
- :mod:`~kmcflow.hpc.scripts`: array and single-job scripts with every value checked or quoted;
- :mod:`~kmcflow.hpc.campaign_dir`: the campaign folder (one folder per hop), hop states, collect;
- :mod:`~kmcflow.hpc.task`: one array task (``python -m kmcflow.hpc.task DIR INDEX|collect``),
  with the signal trap that saves before a walltime kill;
- :mod:`~kmcflow.hpc.scheduler`: submit and query through qtoolkit, ``squeue``, ``qstat``;
- :mod:`~kmcflow.hpc.submit`: array and dependent collect jobs, resume;
- :mod:`~kmcflow.hpc.submissions`: the submission records and what the scheduler still lists;
- :mod:`~kmcflow.hpc.remote`: jobflow-remote project files for sites with MongoDB.
"""

from __future__ import annotations
