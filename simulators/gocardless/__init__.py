"""A GoCardless Pro API simulator: ``Simulator`` (see docs/simulator-gocardless.md)."""

from .clock import SimClock
from .simulator import Simulator

__all__ = ["SimClock", "Simulator"]
