"""Started by Python at start-up when this folder is on PYTHONPATH (tests only): freeze the clock.

See tests/plugins/frozen_clock.py. Without TEST_FROZEN_CLOCK it does nothing.
"""

import os

_moment = os.environ.get("TEST_FROZEN_CLOCK")
if _moment:
    import datetime as _dt

    import time_machine as _time_machine

    _time_machine.travel(_dt.datetime.fromisoformat(_moment), tick=True).start()
