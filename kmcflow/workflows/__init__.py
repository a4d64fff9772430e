"""DFT+U relaxations, CI-NEB barriers and Vineyard prefactors through ASE, as jobflow flows.

Stage 2 of the pipeline; needs the ``workflows`` extra (jobflow, atomate2, emmet-core). Modules:

- :mod:`~kmcflow.workflows.calculators`: ASE calculators from one validated config;
- :mod:`~kmcflow.workflows.settings`: the settings of a relaxation, a band and a prefactor (one
  model each, used by the functions, the makers, campaign files and the ``barrier`` flags);
- :mod:`~kmcflow.workflows.results`: the result of each calculation and of a hop (one model
  each, with a JSON schema);
- :mod:`~kmcflow.workflows.neb`: band interpolation and the two-stage CI-NEB;
- :mod:`~kmcflow.workflows.prefactor`: Vineyard prefactors from finite-difference Hessians;
- :mod:`~kmcflow.workflows.hop`: one hop from its endpoints (plain functions);
- :mod:`~kmcflow.workflows.output`: the files of one hop;
- :mod:`~kmcflow.workflows.makers`, :mod:`~kmcflow.workflows.flows`: jobflow makers and flows;
- :mod:`~kmcflow.workflows.assembly`: hop results into an event catalog;
- :mod:`~kmcflow.workflows.campaign`: campaign files, local runs with a file store.
"""

from __future__ import annotations
