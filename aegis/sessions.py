"""Django's database session store, with the one lookup every signed-in request makes bounded.

The stock store reads `Session.objects.get(session_key=..., expire_date__gt=now)`; the ORM sends
that as an `$and`, which the embedded server's planner answers with a scan of every session ever
stored (expired ones stay until `clearsessions`). Here the same read is a plain `find`, which its
planner answers from the plain (session_key, expire_date) index
(accounts/migrations/0006_plain_lookup_indexes.py): one document however many sessions exist.
Not a `hint`: the embedded server answers a hinted find by walking the whole hinted index.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.utils import timezone

from aegis.mongo import collection


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
        )
        if doc is None:
            self._session_key = None
            return None
        return Session(session_key=key, session_data=doc["session_data"], expire_date=doc["expire_date"])

    def exists(self, session_key):
        return collection(self.model).find_one({"session_key": session_key}, {"_id": 1}) is not None
