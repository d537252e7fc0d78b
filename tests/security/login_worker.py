"""One OS process making login attempts over the app's HTTP stack, for the cross-process
throttle tests: python -m tests.security.login_worker EMAIL_PATTERN IP COUNT [START_AT].

EMAIL_PATTERN may contain {i} (the attempt number). Prints the status codes as a JSON list.
START_AT (epoch seconds) lets several workers begin together.
"""

import json
import os
import sys
import time

import django


def main() -> None:
    pattern, ip, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start_at = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegis.settings")
    django.setup()
    from django.test import Client

    client = Client(REMOTE_ADDR=ip)
    client.get("/healthz")  # connect to the database before the start line
    time.sleep(max(0.0, start_at - time.time()))
    statuses = []
    for i in range(count):
        body = json.dumps({"email": pattern.format(i=i), "password": "definitely the wrong password"})
        statuses.append(client.post("/api/auth/login", body, content_type="application/json").status_code)
    print(json.dumps(statuses))


if __name__ == "__main__":
    main()
