"""Drivers: one module per wire protocol, each implementing drivers.base.Driver."""
