"""Entry point of one array task: ``python -m kmcflow.hpc.task CAMPAIGN_DIR INDEX``."""

from __future__ import annotations

import sys

from kmcflow.hpc.campaign_dir import task_main

if __name__ == "__main__":
    sys.exit(task_main())
