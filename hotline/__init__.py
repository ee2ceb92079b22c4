"""Shared core of the migrant protection hotline."""
