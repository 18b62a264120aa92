"""plugwatch.yaml: its models, YAML loading with line numbers, and the loader that builds a Config.

    config = load_config("plugwatch.yaml")   # ConfigError: one line per problem, file:line: field
"""

from plugwatch.config.loader import (
    Config,
    PlugConfig,
    Target,
    config_from_dict,
    load_config,
    resolve_database,
)

__all__ = ["Config", "PlugConfig", "Target", "config_from_dict", "load_config", "resolve_database"]
