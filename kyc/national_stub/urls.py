urlpatterns: list = []  # filled by the stub service (kyc/national_stub/views.py)
