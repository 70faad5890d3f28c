"""The demo site's settings as ``bench.storm`` runs its hosts: ``BENCH_STORM_WAITING``,
when set, is ``API_MAX_WAITING`` (otherwise ftauth's default)."""

import os

from demo_site.settings import *  # noqa: F403
from demo_site.settings import FTAUTH

if os.environ.get("BENCH_STORM_WAITING"):
    FTAUTH = {**FTAUTH, "API_MAX_WAITING": int(os.environ["BENCH_STORM_WAITING"])}
