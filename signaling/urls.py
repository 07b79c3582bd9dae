from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.customer_page, name="customer"),
    path("kiosk/", views.customer_page, {"kiosk": True}, name="kiosk"),
    path("kiosk/enrol/", views.kiosk_enrol, name="kiosk_enrol"),
    # The kiosk's simulated card reader (KIOSK_SIMULATOR): at the path the kiosk page has always
    # used, beside the identity check's own HTTP transport (kyc/urls.py).
    path("kyc/simulated-card/", views.simulated_card, name="kiosk_simulated_card"),
    path("console/", views.console_page, name="console"),
    path("console/wallboard/", views.wallboard_page, name="wallboard"),
    path(
        "console/login/",
        auth_views.LoginView.as_view(template_name="console/login.html"),
        name="login",
    ),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
]
