"""Packaging that pyproject.toml cannot say alone: folders outside plugwatch/ mapped into it.

The migrations stay in the top-level alembic/ folder and the example rules in rules/ (where people
look for them); the wheel carries them as plugwatch.migrations and plugwatch.example_rules.
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED = {
    "plugwatch.migrations": "alembic",
    "plugwatch.migrations.versions": "alembic/versions",
    "plugwatch.example_rules": "rules",
}

setup(
    packages=[*find_packages(include=["plugwatch", "plugwatch.*"]), *MAPPED],
    package_dir=MAPPED,
    package_data={
        "plugwatch.migrations": ["script.py.mako"],
        "plugwatch.example_rules": ["*.yaml"],
        "plugwatch.config": ["example.yaml"],
    },
)
