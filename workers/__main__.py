"""Start an RQ worker: `python -m workers [--burst]`.

It first re-enqueues every outbox job Redis lost, then works the queue with RQ's scheduler
(retries with back-off and the acknowledgement deadlines need it); see workers/worker.py."""
from __future__ import annotations

import argparse
import logging

from gateway import logs

from .runtime import runtime
from .worker import GatewayWorker


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    rt = runtime()
    logs.configure(json_lines=rt.settings.json_logs)
    worker = GatewayWorker([rt.queue], rt)
    worker.reconcile()
    worker.work(burst=args.burst, with_scheduler=True, logging_level=logging.INFO)


if __name__ == "__main__":
    main()
