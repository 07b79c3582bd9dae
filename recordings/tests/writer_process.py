"""A recorder in its own process, for the "server died mid-call" test.

Usage: python -m recordings.tests.writer_process OUT_DIR RECORDING_ID DATA_KEY_HEX SECONDS

Feeds SECONDS of synthetic media with 1 s segments, prints one JSON line per sealed segment, then
prints "fed" and waits on stdin without ever closing the recorder, as a server would mid-call.
"""

import json
import os
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videobank.settings")
    django.setup()
    from recordings.tests.synthetic import feed
    from recordings.writer import SideRecorder

    out_dir, recording_id, key_hex, seconds = sys.argv[1:5]

    def on_segment(info) -> None:
        print(json.dumps(asdict(info)), flush=True)

    recorder = SideRecorder(
        recording_id=uuid.UUID(recording_id),
        side="customer",
        data_key=bytes.fromhex(key_hex),
        t0=0.0,
        segment_seconds=1.0,
        out_dir=Path(out_dir),
        on_segment=on_segment,
        queue_size=4096,
    )
    feed(recorder, float(seconds), t0=0.0)
    print("fed", flush=True)
    sys.stdin.read()  # until killed


if __name__ == "__main__":
    main()
