"""Importers of raw telemetry formats (tables, mahimahi traces, NAB series) into the project's schema."""
