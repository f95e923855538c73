"""The spike profile: a steady crowd, then three times as many users within seconds, then
back, so a run shows how the shop absorbs a surge and recovers from it."""

from __future__ import annotations

import os

from locust import LoadTestShape


class SpikeShape(LoadTestShape):
    users = int(os.environ.get("LOAD_USERS", "20"))
    spawn_rate = float(os.environ.get("LOAD_SPAWN_RATE", "5"))
    duration_s = float(os.environ.get("LOAD_DURATION_S", "120"))

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed > self.duration_s:
            return None
        # The surge arrives in about five seconds, whatever the steady spawn rate.
        if 0.4 * self.duration_s <= elapsed < 0.6 * self.duration_s:
            return 3 * self.users, max(self.spawn_rate, 2 * self.users / 5)
        return self.users, self.spawn_rate
