"""The demo site's settings, with the sandbox quota taken from ``BENCH_SANDBOX_QUOTA``.

Used by the token-reuse phase of ``bench.api_throughput``, which needs many
calls in little time; the quota phase runs the demo site's own settings.
"""

import os

from demo_site.settings import *  # noqa: F403

FTAUTH_SANDBOX = {"QUOTA_PER_SECOND": float(os.environ.get("BENCH_SANDBOX_QUOTA", "4"))}
