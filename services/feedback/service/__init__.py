"""Use cases of the feedback service, a module for each thing it does: units, unit_import, intake, erasure, reads."""
