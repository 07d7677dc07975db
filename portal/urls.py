from allauth.account import views as account_views
from allauth.socialaccount import views as socialaccount_views
from allauth.socialaccount.providers.microsoft import views as microsoft_views
from django.contrib import admin
from django.urls import include, path

from portal import auth, health, views

# Only the parts of allauth that Entra sign-in uses: no sign-up, passwords, e-mail
# management or account linking. The callback is ours: it verifies the id token.
accounts = [
    path("login/", account_views.login, name="account_login"),
    path("logout/", account_views.logout, name="account_logout"),
    path("inactive/", account_views.account_inactive, name="account_inactive"),
    path("microsoft/login/", microsoft_views.oauth2_login, name="microsoft_login"),
    path("microsoft/login/callback/", auth.entra_callback, name="microsoft_callback"),
    path(
        "3rdparty/login/cancelled/",
        socialaccount_views.login_cancelled,
        name="socialaccount_login_cancelled",
    ),
    path(
        "3rdparty/login/error/", socialaccount_views.login_error, name="socialaccount_login_error"
    ),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("access/", views.access, name="access"),
    path("", include("tenants.urls")),
    path("", include("digests.urls")),
    path("", include("permissions.urls")),
]
