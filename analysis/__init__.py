"""Offline analysis of ionlink data: ARTIQ results files, detector time-tags and statistics.

This package reads HDF5 files only and never imports the simulation (`ionlink`).
"""
