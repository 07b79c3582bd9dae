from django.urls import path

from .consumers import CustomerConsumer, SupervisorConsumer, TellerConsumer

websocket_urlpatterns = [
    path("ws/customer/", CustomerConsumer.as_asgi()),
    path("ws/teller/", TellerConsumer.as_asgi()),
    path("ws/supervisor/", SupervisorConsumer.as_asgi()),
]
