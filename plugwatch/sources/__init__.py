"""Sources: each plug family turns a plug into readings behind the interface in sources.base."""
