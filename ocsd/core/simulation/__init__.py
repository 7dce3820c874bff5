"""The dialing simulation of one Campaign Group: :class:`GroupSimulation` and its model."""

from ocsd.core.simulation.group import (
    DEFAULT_DIALING,
    GroupModel,
    GroupSimulation,
    ListModel,
    Totals,
)

__all__ = ["DEFAULT_DIALING", "GroupModel", "GroupSimulation", "ListModel", "Totals"]
