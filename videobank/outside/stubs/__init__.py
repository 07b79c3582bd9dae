"""The toolkit of outside-system stand-ins (``kyc/national_stub``, ``workflows/corebank_stub``).

A stub keeps its domain (a registry, a core bank's ledger) in its app; what every stand-in does
the same lives here:

- ``answers``: one JSON error shape (``{error, detail, field?, en?, zh?}``) and body parsing;
- ``keys``: the API key (``X-Api-Key``) and the developer endpoints' admin key
  (``X-Admin-Key``, never the API key), and the start-up key check of a stub process;
- ``faults``: fault controls shared by every process serving the stub (outage, latency, jitter,
  error rate, and a stub's own extras), applied before each API call, switched over
  ``/v1/_control``;
- ``records``: idempotent answers (a repeated request id or idempotency key gets the recorded
  answer, the same id for another question is refused);
- ``command``: the ``manage.py <stub>`` command (its own process: only the stub's URLs,
  ``--dev-endpoints``, keys checked before it listens); ``urls``: that process's URL conf;
- ``process``: a stub run as a process of its own, for tests and demos.
"""
