"""The demo site's settings as ``bench.signin`` runs them: the demo's own, defaults
included (ftauth's pacing of userinfo among them: 4 calls/s per application, France
Travail's documented per-application quota), against ``bench.idp`` (environment set by
the benchmark), with each request's database work counted (``bench.instrument``)."""

from demo_site.settings import *  # noqa: F403
from demo_site.settings import MIDDLEWARE

MIDDLEWARE = ["bench.instrument.QueryCount", *MIDDLEWARE]
