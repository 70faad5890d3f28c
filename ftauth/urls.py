from django.urls import path

from .views import session, signin

app_name = "ftauth"

urlpatterns = [
    path("login/<str:realm>/", signin.login, name="login"),
    path("callback/<str:realm>/", signin.callback, name="callback"),
    path("link/confirm/", signin.link_confirm, name="link_confirm"),
    path("logout/", session.logout, name="logout"),
    path("logout/done/", session.logout_return, name="logout_return"),
    path("backchannel-logout/<str:realm>/", session.backchannel_logout, name="backchannel_logout"),
    path("account/", session.account, name="account"),
    path("account/unlink/<str:realm>/", session.unlink, name="unlink"),
    path("consent-withdrawn/", session.consent_withdrawn, name="consent_withdrawn"),
]
