"""Diagnostics: the record, the one code table, rendering and fix application."""
