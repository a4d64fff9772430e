"""Published barrier tables: read, check (rates, detailed balance), recompute, export.

``kmcflow reproduce TABLE`` runs all of it; see :mod:`kmcflow.tables.table` for the format.
"""
