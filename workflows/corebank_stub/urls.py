urlpatterns: list = []  # filled by the stub service (workflows/corebank_stub/views.py)
