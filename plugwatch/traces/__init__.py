"""Recorded power traces: CSV layout sniffing, read options, fast time parsing, reading, plots.

Importing this package imports nothing heavy; numpy and matplotlib load with reader and plot.
"""
