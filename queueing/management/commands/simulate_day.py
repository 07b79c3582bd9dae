"""``manage.py simulate_day``: a day at the video bank on a virtual clock, for staffing what-ifs."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from queueing.simulation import (
    DayResult,
    Patience,
    Scenario,
    StaffingSearch,
    default_scenario,
    find_staffing,
    format_target,
    parse_hours,
    parse_target,
    read_arrivals_csv,
    simulate_runs,
)

EPILOG = """\
The day runs the real routing policy (queueing.routing.Router) on a virtual clock: customers arrive,
wait, are offered to the best free teller, abandon when their patience runs out, and waiting calls
are re-routed the instant a relaxation step fires. No database is touched.

Figures (per business, per priority, per hour of arrival, overall):
  SL        answered within T seconds / answered                       (the "80" of 80/20)
  SL2       (answered + abandoned within T) / (answered + abandoned)   (Asterisk servicelevelperf2)
  ASA       average speed of answer, offer answer delay included
  aband.    abandoned / offered
  occupancy (offer-to-hang-up + wrap-up) / staffed time, per teller group

Scenario file (--config, JSON; print the built-in one with --show-config and edit it):
  hours [9, 17], target "80/20", answer_delay_s, wrap_up_s, patience (mean seconds or null),
  businesses: {name: {requirements {skill: level}, steps [{after_s, kind lower|any|group, value}],
               service {dist exponential|lognormal, mean_s, sd_s}, arrivals_per_hour (number or
               {"9": 28, "10": 40, ...}), priority_mix {"2": 0.05, "1": 0.1},
               languages {"zh": 0.97, "en": 0.03}, channels {"app": 0.55, ...}, patience}},
  tellers: [{name, count, skills {skill: level}, languages [..], channels [..], groups [..],
             shift [start_h, end_h]}]
Arrivals CSV (--arrivals-csv): header t_s,business[,priority,language,channel]; t_s in seconds
since 00:00 of the day (09:00 = 32400); arrivals outside the opening hours are ignored.

Examples:
  manage.py simulate_day
      the built-in bank day, 09-17, five businesses, three teller groups
  manage.py simulate_day --find-staffing --target 80/20 --runs 5
  manage.py simulate_day --find-staffing --target 90/20 --runs 5
      how many tellers do we need for 80/20 - or 90/20? Prints the smallest single group of
      generalists meeting the target over the day and in every hour, next to Erlang C
  manage.py simulate_day --tellers 12 --chart sl.png
      what if the same demand met 12 tellers who can do everything?
  manage.py simulate_day --config monday.json --arrivals-csv monday.csv --json
"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = (
        "Simulate a day of the video bank's queue (discrete events, the real routing policy)\n"
        "and print service level, SL2, ASA, abandonment and occupancy; optionally find the\n"
        "teller count that meets a service-level target."
    )
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = _HelpFormatter
        parser.epilog = EPILOG
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--config",
            metavar="FILE.json",
            help="scenario: businesses (requirements, relaxation steps, service times, arrivals "
            "per hour), teller groups, hours, patience (default: the built-in bank day)",
        )
        parser.add_argument(
            "--show-config",
            action="store_true",
            help="print the scenario as JSON (after the overrides below) and exit",
        )
        parser.add_argument(
            "--arrivals-csv",
            metavar="FILE",
            help="replay these arrivals (t_s,business[,priority,language,channel]) instead of "
            "Poisson arrivals from the scenario's hourly rates",
        )
        parser.add_argument(
            "--tellers",
            type=int,
            metavar="N",
            help="replace the staffing plan by one group of N generalists able to take every "
            "business (single-skill what-if)",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="random seed; same seed, same day (default 1)"
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=1,
            metavar="K",
            help="simulate K days (seeds SEED..SEED+K-1) and pool the figures (default 1)",
        )
        parser.add_argument(
            "--hours",
            metavar="START-END",
            help="opening hours, e.g. 8-20 (default from the scenario, 9-17); hours without an "
            "arrival rate get no calls, teller groups without a shift work the opening hours",
        )
        parser.add_argument(
            "--target",
            metavar="SL/T",
            help="service-level target: percent of answered calls within T seconds, e.g. 80/20 "
            "or 90/20; T is also the threshold of SL and SL2 (default from the scenario, 80/20)",
        )
        parser.add_argument(
            "--patience",
            metavar="SECONDS|none",
            help="customers' mean patience (exponential) before they hang up, or 'none' for no "
            "abandonment (default from the scenario, 180)",
        )
        parser.add_argument(
            "--answer-delay",
            type=float,
            metavar="SECONDS",
            help="teller's delay to accept an offer, counted in the customer's wait "
            "(default from the scenario, 3)",
        )
        parser.add_argument(
            "--wrap-up",
            type=float,
            metavar="SECONDS",
            help="teller's after-call work before the next offer (default from the scenario, 30)",
        )
        parser.add_argument(
            "--find-staffing",
            action="store_true",
            help="search the smallest single teller group meeting --target (over the day, and in "
            "every hour) and print it with the Erlang C figure for the busiest hour",
        )
        parser.add_argument(
            "--max-tellers",
            type=int,
            default=500,
            metavar="N",
            help="give up the staffing search beyond N tellers (default 500)",
        )
        parser.add_argument(
            "--chart",
            metavar="OUT.png",
            help="draw service level by hour of arrival, with the target line, to this PNG",
        )
        parser.add_argument(
            "--json", action="store_true", help="print machine-readable figures as JSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scenario = self.scenario(options)
        if options["show_config"]:
            self.stdout.write(json.dumps(scenario.to_dict(), indent=2, ensure_ascii=False))
            return
        rows = None
        if options["arrivals_csv"]:
            try:
                rows = read_arrivals_csv(options["arrivals_csv"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"--arrivals-csv: {exc}") from None
        if options["runs"] < 1:
            raise CommandError("--runs must be at least 1")
        try:
            if options["find_staffing"]:
                search = find_staffing(
                    scenario,
                    seed=options["seed"],
                    runs=options["runs"],
                    rows=rows,
                    max_tellers=options["max_tellers"],
                )
                self.report_search(scenario, search, options)
            else:
                result = simulate_runs(
                    scenario, seed=options["seed"], runs=options["runs"], rows=rows
                )
                self.report_day(scenario, result, options)
        except ValueError as exc:  # e.g. a CSV naming a business the scenario lacks
            raise CommandError(str(exc)) from None

    # --- input

    def scenario(self, options: dict[str, Any]) -> Scenario:
        try:
            if options["config"]:
                data = json.loads(Path(options["config"]).read_text(encoding="utf-8"))
                scenario = Scenario.from_dict(data)
            else:
                scenario = default_scenario()
            if options["hours"]:
                scenario = replace(scenario, hours=parse_hours(options["hours"]))
            if options["target"]:
                target_sl, threshold_s = parse_target(options["target"])
                scenario = replace(scenario, target_sl=target_sl, threshold_s=threshold_s)
            if options["patience"]:
                scenario = replace(scenario, patience=Patience.parse(options["patience"]))
            if options["answer_delay"] is not None:
                scenario = replace(scenario, answer_delay_s=options["answer_delay"])
            if options["wrap_up"] is not None:
                scenario = replace(scenario, wrap_up_s=options["wrap_up"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"scenario: {exc!r}") from None
        if options["tellers"] is not None:
            if options["find_staffing"]:
                raise CommandError("--tellers and --find-staffing exclude each other")
            if options["tellers"] < 1:
                raise CommandError("--tellers must be at least 1")
            scenario = scenario.with_single_group(options["tellers"])
        return scenario

    # --- output

    def report_day(self, scenario: Scenario, result: DayResult, options: dict[str, Any]) -> None:
        target = format_target(scenario.target_sl, scenario.threshold_s)
        if options["chart"]:
            write_chart(
                result, scenario, options["chart"], title=f"Service level by hour ({target})"
            )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "target": target,
                        "seed": options["seed"],
                        "result": result.as_dict(),
                        "meets_target": (result.overall.service_level or 0) >= scenario.target_sl,
                    },
                    indent=2,
                )
            )
            return
        self.stdout.write(result.table())
        sl = result.overall.service_level or 0.0
        verdict = "meets" if sl >= scenario.target_sl else "misses"
        self.stdout.write(f"\nThe day {verdict} the {target} target (SL {sl * 100:.1f}%).")
        below = [
            f"{name} {f.service_level * 100:.1f}%"
            for name, f in result.by_business.items()
            if f.service_level is not None and f.service_level < scenario.target_sl
        ]
        if below:
            self.stdout.write(f"Businesses below target: {', '.join(below)}.")
        if options["chart"]:
            self.stdout.write(f"Chart written to {options['chart']}.")

    def report_search(
        self, scenario: Scenario, search: StaffingSearch, options: dict[str, Any]
    ) -> None:
        target = format_target(search.target_sl, search.threshold_s)
        best = search.every_hour or search.for_day
        if options["chart"] and best is not None:
            write_chart(
                search.trials[best].result,
                scenario,
                options["chart"],
                title=f"Service level by hour, {best} tellers ({target})",
            )
        if options["json"]:
            self.stdout.write(json.dumps({"seed": options["seed"], **search.as_dict()}, indent=2))
            return
        out = self.stdout.write
        note = (
            "one group as configured"
            if len(scenario.tellers) == 1
            else "one group of generalists able to take every business"
        )
        runs = options["runs"]
        out(f"Staffing search for {target} ({note}; {runs} run(s) from seed {options['seed']})")
        out(
            f"{'tellers':>7} {'offered':>8} {'SL':>6} {'worst hour':>10} {'ASA s':>6}"
            f" {'aband.':>6} {'occupancy':>9}"
        )
        for n, trial in sorted(search.trials.items()):
            f = trial.result.overall
            occupancy = next(iter(trial.result.by_group.values())).occupancy or 0.0
            worst = trial.result.worst_hour
            worst_text = f"{worst[0]:02d}h {worst[1] * 100:4.1f}%" if worst else "-"
            out(
                f"{n:7d} {f.offered:8d} {(f.service_level or 0) * 100:5.1f}% {worst_text:>10}"
                f" {f.asa_s or 0:6.1f} {(f.abandonment_rate or 0) * 100:5.1f}%"
                f" {occupancy * 100:8.1f}%"
            )
        out("")
        out(f"Smallest staffing meeting {target} over the day:  {_count(search.for_day)}")
        out(f"Smallest staffing meeting {target} in every hour: {_count(search.every_hour)}")
        if search.erlang_c_busiest_hour is not None:
            hour = search.busiest_hour or 0
            out(
                f"Erlang C for the busiest hour ({hour:02d}:00, "
                f"{scenario.offered_erlangs(hour):.1f} Erlangs, no abandonment): "
                f"{search.erlang_c_busiest_hour} tellers"
            )
        if options["chart"] and best is not None:
            out(f"Chart for {best} tellers written to {options['chart']}.")


def _count(n: int | None) -> str:
    return "not found (raise --max-tellers)" if n is None else f"{n} tellers"


def write_chart(result: DayResult, scenario: Scenario, path: str, *, title: str) -> None:
    """Service level by hour of arrival as a line, offered calls as bars, the target dashed."""
    try:  # only --chart needs it (half a second to load); the backend is set before pyplot
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a project dependency
        raise CommandError(f"--chart needs matplotlib: {exc}") from None
    hours = sorted(result.by_hour)
    levels = [
        (result.by_hour[h].service_level or 0) * 100 if result.by_hour[h].answered else math.nan
        for h in hours
    ]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    calls_ax = ax.twinx()
    offered = [result.by_hour[h].offered / result.runs for h in hours]
    calls_ax.bar(hours, offered, color="#d8e2ef", width=0.8)
    calls_ax.set_ylabel("calls offered" + (" (mean of runs)" if result.runs > 1 else ""))
    ax.set_zorder(calls_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(hours, levels, marker="o", color="#1f5fa8", label="service level")
    ax.axhline(
        scenario.target_sl * 100,
        color="#c0392b",
        linestyle="--",
        label=f"target {format_target(scenario.target_sl, scenario.threshold_s)}",
    )
    ax.set_ylim(0, 105)
    ax.set_xticks(hours, [f"{h:02d}:00" for h in hours])
    ax.set_xlabel("hour of arrival")
    ax.set_ylabel(f"% answered within {scenario.threshold_s:g} s")
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
