"""Django's database session store, with the one lookup every signed-in request makes bounded.

The stock store reads `Session.objects.get(session_key=..., expire_date__gt=now)`; the ORM sends
that as an `$and`, which the embedded server's planner answers with a scan of every session ever
stored (expired ones stay until `clearsessions`). Here the same read names its index, so it
examines one document however many sessions exist. Writes (by `session_key` alone) already use
the plain `session_key_lookup` index (accounts/migrations/0006_plain_lookup_indexes.py).
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.utils import timezone

from aegis.mongo import collection

LOOKUP_INDEX = [("session_key", 1), ("expire_date", 1)]


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        key = self.session_key
        if not isinstance(key, str) or not key:
            self._session_key = None
            return None
        Session = self.model
        doc = collection(Session).find_one(
            {"session_key": key, "expire_date": {"$gt": timezone.now()}},
            {"session_data": 1, "expire_date": 1},
            hint=LOOKUP_INDEX,
        )
        if doc is None:
            self._session_key = None
            return None
        return Session(session_key=key, session_data=doc["session_data"], expire_date=doc["expire_date"])

    def exists(self, session_key):
        return collection(self.model).find_one({"session_key": session_key}, {"_id": 1}, hint=LOOKUP_INDEX) is not None
