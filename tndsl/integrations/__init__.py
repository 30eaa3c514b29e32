"""Adapters that make optimizer libraries use tndsl's factors (optional extras)."""
