"""The web app's worker pool: a fixed number of threads and a bounded queue; a request beyond them is answered
503 with ``Retry-After`` at once instead of piling up."""
from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from typing import Callable

from .errors import ApiError


class WorkerPool:
    """``workers`` threads with room for ``queue`` more requests waiting; beyond that :meth:`run` refuses
    at once. A request that times out is answered at once; its photo keeps its worker until done (a
    thread can't be stopped), and its slot stays taken until then, so the pool never over-commits."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.queue = workers, queue
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="idphoto-worker")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._lock = threading.Lock()
        self.taken = self.running = self.served = self.rejected = self.timed_out = 0
        self._mean_s = 1.0  # running mean of the work time, for Retry-After

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * (self.queue + self.workers) / self.workers))

    def stats(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "queue": self.queue, "running": self.running,
                    "waiting": self.taken - self.running, "served": self.served, "rejected": self.rejected,
                    "timed_out": self.timed_out}

    async def run(self, fn: Callable, timeout: float):
        """``fn()`` on a worker; returns (its result, seconds waited in the queue)."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.rejected += 1
            raise ApiError(503, "busy: all workers and the queue are full; retry later",
                           {"Retry-After": str(self.retry_after())})
        with self._lock:
            self.taken += 1
        submitted = time.perf_counter()
        started = []

        def work():
            t = time.perf_counter()
            started.append(t - submitted)
            with self._lock:
                self.running += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self.running -= 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t)

        def release(_):
            with self._lock:
                self.taken -= 1
                self.served += 1
            self._slots.release()

        future = self._executor.submit(work)
        future.add_done_callback(release)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            with self._lock:
                self.timed_out += 1
            raise ApiError(504, f"the photo took longer than the server's limit of {timeout:g} s") from None
        return result, (started[0] if started else 0.0)

    def shutdown(self):
        self._executor.shutdown(wait=False, cancel_futures=True)
