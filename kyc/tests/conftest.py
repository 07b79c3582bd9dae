"""The identity check's fixtures (a connected call with its recording, the engines' settings, a
person with their card and live frames), shared by the modules that drive a whole check."""

from kyc.tests.test_identity_check import call, kyc_settings, person_and_frames  # noqa: F401
