"""Option values shared by several commands, parsed into objects with flag-naming errors."""

from __future__ import annotations

from kmcflow.errors import ConfigError


def calculator_from_flag(value: str, flag: str = "--calculator"):
    """The :class:`~kmcflow.workflows.calculators.CalculatorConfig` a flag names.

    A code name or a config file; an error in a file names the file, any other names the flag.
    """
    from kmcflow.workflows.calculators import load_calculator_config

    try:
        return load_calculator_config(value)
    except ConfigError as exc:
        if exc.file is not None:  # a config file names itself
            raise
        raise ConfigError(exc.message, field=flag, hint=exc.hint) from exc
