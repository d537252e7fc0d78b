from django.http import JsonResponse
from django.shortcuts import render

from accounts.policy import PUBLIC, policy
from aegis.mongo import db_ping


@policy(PUBLIC, methods=["GET"])
def healthz(request):
    if db_ping():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)


@policy(PUBLIC, methods=["GET"])
def landing(request):
    return render(request, "landing.html")
