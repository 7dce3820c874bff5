"""ocsd: a simulator of the Genesys Outbound Contact Server campaign engine."""

__version__ = "0.1.0"
