"""Append-only models: rows are inserted once and never updated or deleted by any ORM path.

Like django-hordak guarding its legs, the model guards itself: `save()` refuses an update,
`delete()` always raises, and the queryset's `update()`, `delete()` and `bulk_update()` raise
too, whether reached through the manager or any queryset built from it.
"""

from django.db import models

from aegis.errors import AppendOnlyViolation


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyViolation(model=self.model.__name__)

    def delete(self):
        raise AppendOnlyViolation(model=self.model.__name__)

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyViolation(model=self.model.__name__)

    def update_or_create(self, *args, **kwargs):
        raise AppendOnlyViolation(model=self.model.__name__)

    _update = update


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyViolation(model=type(self).__name__)
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyViolation(model=type(self).__name__)
