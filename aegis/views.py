from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from aegis.mongo import db_ping


@require_GET
def healthz(request):
    if db_ping():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)


@require_GET
def landing(request):
    return render(request, "landing.html")
