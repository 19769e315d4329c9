from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from agents import views as agent_views
from agents.evals import views as eval_views
from aios_site import errors
from aios_site.accounts import views
from aios_site.api import api
from approvals import views as approval_views
from catalog import views as catalog_views
from catalog.content import views as content_views
from memory import views as memory_views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/switch/", views.workspace_switch, name="workspace_switch"),
    path("w/<slug:slug>/settings/", views.settings_page, name="settings"),
    path(
        "w/<slug:slug>/settings/account/<str:action>/",
        views.settings_action,
        name="settings_action",
    ),
    path(
        "invite/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/invite.html",
            post_reset_login=True,
            post_reset_login_backend="django.contrib.auth.backends.ModelBackend",
            success_url=reverse_lazy("home"),
        ),
        name="invite_accept",
    ),
    path(
        "w/<slug:slug>/settings/tokens/", views.settings_token_create, name="settings_token_create"
    ),
    path(
        "w/<slug:slug>/settings/tokens/<int:token_id>/revoke/",
        views.settings_token_revoke,
        name="settings_token_revoke",
    ),
    path("w/<slug:slug>/runs/", agent_views.run_list, name="runs"),
    path("w/<slug:slug>/runs/<int:run_id>/", agent_views.run_detail, name="run_detail"),
    path("w/<slug:slug>/runs/<int:run_id>/answer/", agent_views.run_answer, name="run_answer"),
    path("w/<slug:slug>/runs/<int:run_id>/cancel/", agent_views.run_cancel, name="run_cancel"),
    path("w/<slug:slug>/runs/<int:run_id>/replay/", agent_views.run_replay, name="run_replay"),
    path("w/<slug:slug>/runs/<int:run_id>/fork/", agent_views.run_fork, name="run_fork"),
    path("w/<slug:slug>/agents/", agent_views.agent_list, name="agents"),
    path("w/<slug:slug>/agents/new/", agent_views.agent_create, name="agent_create"),
    path("w/<slug:slug>/agents/<slug:agent_slug>/run/", agent_views.agent_run, name="agent_run"),
    path(
        "w/<slug:slug>/agents/<slug:agent_slug>/switch/",
        agent_views.agent_switch,
        name="agent_switch",
    ),
    path(
        "w/<slug:slug>/agents/<slug:agent_slug>/settings/",
        agent_views.agent_settings,
        name="agent_settings",
    ),
    path("w/<slug:slug>/costs/", agent_views.cost_page, name="costs"),
    path("w/<slug:slug>/models/", agent_views.model_page, name="models"),
    path("w/<slug:slug>/evals/", eval_views.eval_list, name="evals"),
    path("w/<slug:slug>/evals/new/", eval_views.eval_create, name="eval_create"),
    path("w/<slug:slug>/evals/<int:eval_id>/", eval_views.eval_detail, name="eval_detail"),
    path("w/<slug:slug>/models/<str:action>/", agent_views.model_action, name="model_action"),
    path("w/<slug:slug>/memory/", memory_views.memory_page, name="memory"),
    path("w/<slug:slug>/memory/new/", memory_views.memory_create, name="memory_create"),
    path("w/<slug:slug>/memory/bulk/", memory_views.memory_bulk, name="memory_bulk"),
    path("w/<slug:slug>/memory/import/", memory_views.memory_import, name="memory_import"),
    path(
        "w/<slug:slug>/memory/imports/<int:import_id>/",
        memory_views.memory_import_progress,
        name="memory_import_progress",
    ),
    path(
        "w/<slug:slug>/memory/key/<slug:namespace>/<str:key>/",
        memory_views.memory_key_page,
        name="memory_key",
    ),
    path(
        "w/<slug:slug>/memory/items/<int:item_id>/",
        memory_views.memory_item_page,
        name="memory_item",
    ),
    path(
        "w/<slug:slug>/memory/items/<int:item_id>/<str:action>/",
        memory_views.memory_item_action,
        name="memory_item_action",
    ),
    path("w/<slug:slug>/audit/", approval_views.audit_page, name="audit"),
    path("w/<slug:slug>/settings/policy/", approval_views.policy_page, name="approval_policy"),
    path(
        "w/<slug:slug>/settings/policy/<str:action>/",
        approval_views.policy_action,
        name="approval_policy_action",
    ),
    path("w/<slug:slug>/metrics/", approval_views.metrics_page, name="metrics"),
    path("w/<slug:slug>/metrics/minutes/", approval_views.metrics_minutes, name="metrics_minutes"),
    path("w/<slug:slug>/board/", approval_views.board_page, name="board"),
    path("w/<slug:slug>/board/approve-selected/", approval_views.board_bulk, name="board_bulk"),
    path(
        "w/<slug:slug>/board/suggestions/<str:action>/",
        approval_views.board_suggestion,
        name="board_suggestion",
    ),
    path(
        "w/<slug:slug>/board/<int:proposal_id>/",
        approval_views.board_detail,
        name="board_detail",
    ),
    path(
        "w/<slug:slug>/board/<int:proposal_id>/<str:action>/",
        approval_views.board_action,
        name="board_action",
    ),
    path("w/<slug:slug>/catalog/", catalog_views.product_page, name="catalog"),
    path(
        "w/<slug:slug>/catalog/products/<int:product_id>/describe/",
        catalog_views.product_describe,
        name="catalog_describe",
    ),
    path(
        "w/<slug:slug>/catalog/inventory/", catalog_views.inventory_page, name="catalog_inventory"
    ),
    path("w/<slug:slug>/catalog/messages/", catalog_views.message_page, name="catalog_messages"),
    path("w/<slug:slug>/catalog/store/", catalog_views.store_page, name="catalog_store"),
    path(
        "w/<slug:slug>/catalog/store/connect/",
        catalog_views.store_connect,
        name="catalog_store_connect",
    ),
    path(
        "w/<slug:slug>/catalog/store/<int:store_id>/test-webhook/",
        catalog_views.store_test_webhook,
        name="catalog_store_test",
    ),
    path("w/<slug:slug>/content/", content_views.content_page, name="content"),
    path("w/<slug:slug>/content/briefs/", content_views.brief_create, name="content_brief_create"),
    path(
        "w/<slug:slug>/content/briefs/<int:brief_id>/",
        content_views.brief_page,
        name="content_brief",
    ),
    path(
        "w/<slug:slug>/content/briefs/<int:brief_id>/ideas/",
        content_views.brief_ideas,
        name="content_ideas",
    ),
    path("w/<slug:slug>/content/calendar/", content_views.calendar_page, name="content_calendar"),
    path("w/<slug:slug>/<slug:section>/", views.section_page, name="section"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

handler400 = errors.bad_request
handler404 = errors.not_found
handler500 = errors.server_error
