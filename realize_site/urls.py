from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from realize_site import api, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(success_url="/password/done/"),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("peers/", include("peers.urls")),
    path("areas/", include("areas.urls")),
    path("activity/", views.activity, name="activity"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls()),
    path("api/tokens/", views.api_tokens, name="api_tokens"),
]
