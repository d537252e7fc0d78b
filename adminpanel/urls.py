"""Staff console page routes under /staff/ (namespace `adminpanel`); all ADMIN."""

from django.urls import path

from adminpanel import views

app_name = "adminpanel"

urlpatterns = [
    path("", views.staff_index, name="index"),
    path("users", views.user_list, name="users"),
    path("users/<str:user_id>", views.user_detail, name="user"),
    path("users/<str:user_id>/two-factor/reset", views.user_two_factor_reset, name="user-two-factor-reset"),
    path("accounts/<str:account_id>/status", views.account_status, name="account-status"),
    path("accounts/<str:account_id>/statement", views.account_statement, name="account-statement"),
    path(
        "accounts/<str:account_id>/statement/download",
        views.account_statement_download,
        name="account-statement-download",
    ),
    path("transactions", views.transaction_list, name="transactions"),
    path("transactions/<str:transaction_id>", views.transaction_detail, name="transaction"),
    path("transactions/<str:transaction_id>/reverse", views.transaction_reverse, name="transaction-reverse"),
    path("disputes", views.dispute_queue, name="disputes"),
    path("disputes/<str:dispute_id>", views.dispute_detail, name="dispute"),
    path("disputes/<str:dispute_id>/propose", views.dispute_propose, name="dispute-propose"),
    path("disputes/<str:dispute_id>/reject", views.dispute_reject_view, name="dispute-reject"),
    path("reversals", views.reversal_list, name="reversals"),
    path("reversals/<str:proposal_id>", views.reversal_detail, name="reversal"),
    path("stats", views.stats, name="stats"),
    path("fund", views.fund_account, name="fund"),
    path("events", views.event_list, name="events"),
    path("events/requeue", views.event_requeue, name="events-requeue"),
    path("events/<str:event_id>/requeue", views.event_requeue, name="event-requeue"),
]
