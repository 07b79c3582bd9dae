import getpass
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recordings.export import RecordingExportError, recording_export
from recordings.selectors import recording_find


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return f"uid{os.getuid()}"


class Command(BaseCommand):
    help = (
        "Verify a call recording (segment hashes, authentication tags, manifest), decrypt it in "
        "memory and write playable files: customer.mkv, teller.mkv, segments/, timeline.json, "
        "manifest.json. The export is recorded in the recording's access log."
    )

    def add_arguments(self, parser):
        parser.add_argument("recording", help="recording id or call id")
        parser.add_argument("out_dir", type=Path, help="directory to write the export into")

    def handle(self, *args, recording: str, out_dir: Path, **options):
        target = recording_find(recording)
        if target is None:
            raise CommandError(f"no recording with id or call id {recording!r}")
        try:
            result = recording_export(recording=target, out_dir=out_dir, actor=f"cli:{_os_user()}")
        except RecordingExportError as exc:
            raise CommandError(
                f"recording {target.id} failed verification, nothing exported:\n{exc}"
            ) from exc

        self.stdout.write(f"recording {target.id} (call {target.call_id}, {target.status})")
        for side, summary in result.sides.items():
            assert summary.file is not None  # every exported side is written to its file
            self.stdout.write(
                f"  {side}: {summary.segments} segment(s), {summary.duration_ms / 1000:.1f} s "
                f"from {(summary.start_ms or 0) / 1000:.1f} s -> {out_dir / summary.file}"
            )
        if not result.sides:
            self.stdout.write("  no finished segments")
        for warning in result.warnings:
            self.stderr.write(f"  warning: {warning}")
        self.stdout.write(self.style.SUCCESS(f"exported to {out_dir}"))
