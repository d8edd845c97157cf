"""Start an RQ worker: `python -m workers [--burst]`.

It first re-enqueues every outbox job Redis lost, then works the queue with RQ's scheduler
(retries with back-off and the acknowledgement deadlines need it); see workers/worker.py.

RQ's worker quits when Redis is unreachable at the wrong moment (its bookkeeping after a job),
and a Redis restart must not take the workers with it: a worker that quits without being asked
to starts again here, after a pause, and reconciles what Redis lost on the way."""
from __future__ import annotations

import argparse
import logging
import signal
import time

from redis.exceptions import RedisError

from gateway import logs
from workers.runtime import runtime
from workers.worker import GatewayWorker

log = logging.getLogger(__name__)

RESTART_AFTER_SECONDS = 2


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    rt = runtime()
    logs.configure(json_lines=rt.settings.json_logs, level=rt.settings.log_level_number)
    while True:
        worker = None
        try:  # RQ's worker talks to Redis as it is made: Redis may still be away when it starts again
            worker = GatewayWorker([rt.queue], rt)
            worker.reconcile()
            worker.work(burst=args.burst, with_scheduler=True,
                        logging_level=max(rt.settings.log_level_number, logging.INFO))
        except RedisError as exc:  # raised by RQ's own teardown while Redis is still away
            if worker is None and args.burst:
                raise
            log.warning("worker lost Redis: %s", type(exc).__name__)
        if args.burst or (worker is not None and worker.stop_requested):
            return
        # RQ's handlers call into Redis; until the next worker installs them, a signal just ends us.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log.warning("worker quit without being asked to; starting again in %ss", RESTART_AFTER_SECONDS)
        time.sleep(RESTART_AFTER_SECONDS)


if __name__ == "__main__":
    main()
