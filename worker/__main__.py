"""`python -m worker [--burst] [--no-cron]`: an RQ worker on every queue the portal declares,
and the loop that enqueues the daily jobs (worker/cron.py explains when and why)."""

from __future__ import annotations

import argparse
import logging
import sys

from portal.background import QUEUES, queue
from worker import app, cron


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    parser.add_argument("--simple", action="store_true", help="run jobs in this process (no fork)")
    parser.add_argument(
        "--no-cron", action="store_true", help="do not enqueue the daily jobs (worker/cron.py)"
    )
    args = parser.parse_args(argv)

    flask_app = app()
    if not flask_app.config["REDIS_URL"]:
        print("POCHETTE_REDIS_URL is not set: jobs run inline in the web process.", file=sys.stderr)
        return 2
    from rq import SimpleWorker, Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    queues = [queue(flask_app, name) for name in QUEUES]
    worker_cls = SimpleWorker if args.simple else Worker
    worker = worker_cls(queues, connection=queues[0].connection)
    if not (args.burst or args.no_cron):
        cron.start(flask_app)  # a daemon thread: it ends with the worker
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
