"""Datasets, synthetic scenes with exact flow."""
