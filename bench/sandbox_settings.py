"""The demo site's settings, with the sandbox quota taken from ``BENCH_SANDBOX_QUOTA``
(calls per second) and ``BENCH_SANDBOX_ALGORITHM`` (token_bucket, sliding_window,
fixed_window): ``bench.api_throughput`` runs its quota phase under each algorithm
and its token-reuse phase with the quota lifted."""

import os

from demo_site.settings import *  # noqa: F403

FTAUTH_SANDBOX = {
    "QUOTA_PER_SECOND": float(os.environ.get("BENCH_SANDBOX_QUOTA", "4")),
    "QUOTA_ALGORITHM": os.environ.get("BENCH_SANDBOX_ALGORITHM", "token_bucket"),
}
