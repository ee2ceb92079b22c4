"""Operator tools behind the `hotline` command: run, train, triage, eval, shell, accounts."""
