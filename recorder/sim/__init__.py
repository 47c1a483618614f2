"""The simulator driver every venue's server side runs on (see :mod:`recorder.sim.driver`)."""

from recorder.sim.clock import Clock, ManualClock, Timer
from recorder.sim.driver import (
    Burst,
    Close,
    RestSent,
    Sent,
    Session,
    Simulator,
    dumps,
    fault,
    listen,
    loopback_url,
    serve,
)
from recorder.sim.recording import Recording

__all__ = ["Burst", "Clock", "Close", "ManualClock", "Recording", "RestSent", "Sent", "Session",
           "Simulator", "Timer", "dumps", "fault", "listen", "loopback_url", "serve"]
