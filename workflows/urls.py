from django.urls import path

from . import views

app_name = "workflows"
urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("<str:code>.pdf", views.receipt_pdf, name="receipt_pdf"),
    path("<str:code>/", views.receipt, name="receipt"),
]
