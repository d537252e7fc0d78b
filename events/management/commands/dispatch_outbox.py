"""`manage.py dispatch_outbox`: deliver outbox events to their handlers (see events/dispatcher.py)."""

import json
import signal

from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import bank_floor
from events.dispatcher import Dispatcher
from events.selectors import outbox_parked
from events.services import outbox_requeue


class Command(BaseCommand):
    help = (
        "Deliver pending outbox events to the handlers (AEGIS_OUTBOX_HANDLERS), at least once, in order per "
        "account, in batches (--batch). Runs until stopped (SIGTERM/Ctrl+C finish the current batch); --once drains "
        "what is deliverable now and exits. Several may run at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="deliver what is deliverable now, then exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.05,
            help="seconds to wait when there is nothing to do (the idle poll is one read of an empty index range)",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=None,
            help="events per delivery transaction (default AEGIS_OUTBOX_DELIVERY_BATCH, 100; 1: one at a time)",
        )
        parser.add_argument("--parked", action="store_true", help="list parked events (newest first) and exit")
        parser.add_argument(
            "--requeue",
            metavar="EVENT_ID",
            help="put a parked event back in the queue ('all': every one)",
        )

    def handle(self, *args, once=False, interval=0.05, batch=None, parked=False, requeue=None, **options):
        if parked:
            for event in outbox_parked(floor=bank_floor()).rows:
                self.stdout.write(
                    json.dumps(
                        {
                            "id": str(event["_id"]),
                            "type": event["event_type"],
                            "aggregate": event["aggregate_id"],
                            "attempts": event.get("attempts"),
                            "parked_at": str(event.get("parked_at")),
                            "last_error": event.get("last_error", ""),
                        }
                    )
                )
            return
        if requeue:
            count = outbox_requeue(event_id=None if requeue == "all" else requeue)
            self.stdout.write(f"requeued {count} parked event(s)")
            return

        if batch is not None and batch < 1:
            raise CommandError("--batch must be 1 or more")
        dispatcher = Dispatcher(batch_size=batch)
        if once:
            total = {"delivered": 0, "retried": 0, "parked": 0}
            while True:
                counts = dispatcher.run_once()
                for key, value in counts.items():
                    total[key] += value
                if not any(counts.values()):
                    break
            self.stdout.write(
                f"outbox: {total['delivered']} delivered, {total['retried']} to retry, {total['parked']} parked"
            )
            return

        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            f"dispatcher {dispatcher.name}: delivering to {', '.join(dispatcher.handlers)}, "
            f"{dispatcher.batch_size} event(s) per transaction"
        )
        self.stdout.flush()
        dispatcher.heartbeat(force=True)
        try:
            dispatcher.run_forever(interval=interval, should_stop=lambda: bool(stopping))
        finally:
            dispatcher.retire()
        self.stdout.write(f"dispatcher {dispatcher.name}: stopped after {dispatcher.delivered} events")
