"""Configuration: the settings model, the INI reader, and the adapters that turn
settings into the core's definitions."""
