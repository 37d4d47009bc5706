"""The improvement service's rules in plain Python: routing, the action lifecycle, deadlines,
escalation, verified closure, PDCA plans, risks and figures."""
