"""Rudder, Prober and Nozzle on JAX: the front's modes as they are (gradients are the compiled step's job)."""

from nebulae.astro.gearbox import Nozzle, Prober, Rudder

__all__ = ["Rudder", "Prober", "Nozzle"]
