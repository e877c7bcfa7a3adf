"""A GoCardless Pro API simulator: ``Simulator`` (see docs/simulator-gocardless.md)."""

from .chaos import CHAOS_KINDS
from .clock import SimClock
from .simulator import Simulator

__all__ = ["CHAOS_KINDS", "SimClock", "Simulator"]
