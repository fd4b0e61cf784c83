"""How the assistant is measured: batch runs, metrics and evaluators, judges, the quality gate, variants,
the red team and the load test."""
