"""``bench.signin_settings`` with ftauth's pacing of userinfo lifted: the
``peconnect-individu`` API paced at ``BENCH_USERINFO_RATE`` calls/s (default 1000: in
effect unpaced, the look-alike server enforcing no quota). Only the row of
``bench.signin`` labelled "pacing lifted" is measured with it; every other figure is
the demo's defaults."""

import os

from bench.signin_settings import *  # noqa: F403
from bench.signin_settings import FTAUTH

FTAUTH = {
    **FTAUTH,
    "API_RATE_LIMITS": {
        **FTAUTH.get("API_RATE_LIMITS", {}),
        "peconnect-individu": float(os.environ.get("BENCH_USERINFO_RATE", "1000")),
    },
}
