"""The simulators' shared side: the driver every venue's server runs on
(:mod:`recorder.sim.driver`), its clock (:mod:`recorder.sim.clock`) and what a native replay
serves (:mod:`recorder.sim.recording`).

Only the light parts are re-exported here: ``recorder.replay`` needs :class:`Recording`
without importing aiohttp, which the driver does."""

from recorder.sim.clock import Clock, ManualClock, Timer
from recorder.sim.recording import Recording

__all__ = ["Clock", "ManualClock", "Recording", "Timer"]
