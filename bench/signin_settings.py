"""The demo site's settings as ``bench.signin`` runs them: against ``bench.idp``
(environment set by the benchmark), with each request's database work counted
(``bench.instrument``). Userinfo goes through ftauth's API pacing like any call
with a user's token; ``BENCH_USERINFO_RATE`` sets its calls per second
(default 1000: in effect unpaced, as the look-alike server has no quota; ftauth's default
is 4/s per API, France Travail's documented per-application quota)."""

import os

from demo_site.settings import *  # noqa: F403
from demo_site.settings import FTAUTH, MIDDLEWARE

MIDDLEWARE = ["bench.instrument.QueryCount", *MIDDLEWARE]
FTAUTH = {
    **FTAUTH,
    "API_RATE_LIMITS": {"peconnect-individu": float(os.environ.get("BENCH_USERINFO_RATE", "1000"))},
}
