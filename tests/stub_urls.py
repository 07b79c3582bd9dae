"""The bank's routes plus the stubs mounted at /ext/, whatever the profile: for tests that run
the bank's client against a stub served by the test's own in-process server (``live_server``,
an ASGI app of the test). ``@pytest.mark.urls("tests.stub_urls")``. The production servers'
URLs (``videobank.urls``) never mount them."""

from videobank.urls import bank_urlpatterns, stub_urlpatterns

urlpatterns = [*bank_urlpatterns, *stub_urlpatterns]
