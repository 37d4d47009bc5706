"""Use cases of the improvement service: load, decide with the domain, stage into a unit of work, commit."""
