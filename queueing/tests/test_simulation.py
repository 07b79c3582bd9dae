"""The day simulator: checked against Erlang C, and against what the routing rules promise."""

from __future__ import annotations

import io
import json
import math
import statistics

import pytest
from django.core.management import call_command

from queueing.simulation import (
    Scenario,
    default_scenario,
    erlang_c,
    erlang_c_service_level,
    erlang_c_tellers,
    read_arrivals_csv,
    simulate,
)


def single_skill(
    *, tellers: int, erlangs: float, aht_s: float = 180.0, vip_share: float = 0.0
) -> Scenario:
    """M/M/N: one business, one group, constant arrival rate, nobody hangs up."""
    return Scenario.from_dict(
        {
            "hours": [0, 24],
            "answer_delay_s": 0,
            "wrap_up_s": 0,
            "patience": None,
            "businesses": {
                "password_reset": {
                    "requirements": {"retail": 1},
                    "service": {"dist": "exponential", "mean_s": aht_s},
                    "arrivals_per_hour": erlangs * 3600 / aht_s,
                    "priority_mix": {"2": vip_share},
                }
            },
            "tellers": [{"name": "generalist", "count": tellers, "skills": {"retail": 1}}],
        }
    )


def test_erlang_c_matches_textbook_values():
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: a call waits with probability ρ
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)
    figures = erlang_c_service_level(10, 8.0, aht_s=180, threshold_s=20)
    assert figures.service_level == pytest.approx(1 - 0.4092 * math.exp(-2 * 20 / 180), abs=1e-4)
    assert figures.asa_s == pytest.approx(0.4092 * 180 / 2, abs=0.01)
    assert erlang_c_tellers(offered_erlangs=8.0, aht_s=180, threshold_s=20, target_sl=0.8) == 11


def test_simulated_day_agrees_with_erlang_c():
    """10 tellers, 8 Erlangs (utilisation 0.8), exponential talk, FIFO, no abandonment, no answer
    delay or wrap-up: the textbook M/M/10. Over 8 seeded 24-hour days (≈ 3,800 calls each) the
    pooled service level must lie within ±0.03 of Erlang C and the ASA within ±20 %; one day's
    service level alone varies by about ±0.04 (one standard deviation)."""
    scenario = single_skill(tellers=10, erlangs=8.0)
    expected = erlang_c_service_level(10, 8.0, aht_s=180, threshold_s=20)
    days = [simulate(scenario, seed=seed) for seed in range(1, 9)]
    service_level = statistics.mean(day.overall.service_level for day in days)
    asa_s = statistics.mean(day.overall.asa_s for day in days)
    assert abs(service_level - expected.service_level) <= 0.03, (service_level, expected)
    assert asa_s == pytest.approx(expected.asa_s, rel=0.20), (asa_s, expected)
    assert all(day.overall.answered == day.overall.offered for day in days)
    occupancy = statistics.mean(day.by_group["generalist"].occupancy for day in days)
    assert occupancy == pytest.approx(0.8, abs=0.03)


def test_vip_customers_are_answered_sooner_under_load():
    day = simulate(single_skill(tellers=10, erlangs=9.5, vip_share=0.2), seed=3)
    vip, normal = day.by_priority[2], day.by_priority[0]
    assert vip.offered > 300
    assert normal.offered > 1000
    assert vip.asa_s < normal.asa_s / 3
    assert vip.service_level > normal.service_level


def corporate_day(*, corporate_tellers: int) -> Scenario:
    return Scenario.from_dict(
        {
            "hours": [9, 17],
            "answer_delay_s": 0,
            "wrap_up_s": 0,
            "patience": None,
            "businesses": {
                "corporate_account": {
                    "requirements": {"corporate": 3},
                    "steps": [
                        {"after_s": 30, "kind": "lower", "value": 1},
                        {"after_s": 90, "kind": "any"},
                        {"after_s": 180, "kind": "group", "value": "generalist"},
                    ],
                    "service": {"dist": "exponential", "mean_s": 1200},
                    "arrivals_per_hour": 8,
                }
            },
            "tellers": [
                {"name": "corporate", "count": corporate_tellers, "skills": {"corporate": 3}},
                {
                    "name": "generalist",
                    "count": 4,
                    "skills": {"retail": 2},
                    "groups": ["generalist"],
                },
            ],
        }
    )


def test_generalists_take_corporate_calls_only_once_the_180s_step_fires():
    day = simulate(corporate_day(corporate_tellers=1), seed=5)
    by_generalist = [c.wait_s for c in day.calls if c.teller_group == "generalist"]
    by_corporate = [c.wait_s for c in day.calls if c.teller_group == "corporate"]
    assert len(by_generalist) > 10
    assert len(by_corporate) > 3
    assert min(by_generalist) >= 180
    # The step is an event of its own: an idle generalist gets the call the moment it fires.
    assert any(w == pytest.approx(180, abs=1e-3) for w in by_generalist)
    assert day.overall.answered == day.overall.offered


def test_steps_nobody_could_satisfy_are_skipped_at_once():
    """With no corporate-skilled teller logged in, waiting for the lower/any steps is pointless:
    the router jumps to the generalist step, so a free generalist answers without delay."""
    day = simulate(corporate_day(corporate_tellers=0), seed=5)
    waits = [c.wait_s for c in day.calls if c.answered_s is not None]
    assert {c.teller_group for c in day.calls} == {"generalist"}
    assert statistics.median(waits) == 0


def test_csv_arrivals_are_replayed_as_given():
    rows = read_arrivals_csv(
        io.StringIO(
            "t_s,business,priority,language,channel\n"
            "32400,password_reset,0,zh,app\n"
            "32410,password_reset,2,en,vtm\n"
            "32420,card_loss,,,\n"
            "70000,card_loss,0,zh,web\n"  # after closing time: the doors are shut
        )
    )
    day = simulate(default_scenario(), seed=1, rows=rows)
    assert day.overall.offered == 3
    assert day.by_business["password_reset"].offered == 2
    assert day.by_priority[2].offered == 1


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate_day", *args, stdout=out)
    return out.getvalue()


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        call_command("simulate_day", "--help")
    text = capsys.readouterr().out
    for option in (
        "--config",
        "--arrivals-csv",
        "--tellers",
        "--seed",
        "--runs",
        "--hours",
        "--target",
        "--patience",
        "--find-staffing",
        "--chart",
        "--json",
    ):
        assert option in text
    assert "--find-staffing --target 90/20" in text  # the "how many tellers?" example
    assert "SL2" in text
    assert "ASA" in text


def test_default_day_as_json():
    figures = json.loads(run_command("--json", "--hours", "9-12"))
    overall = figures["result"]["overall"]
    assert overall["offered"] > 100
    assert overall["offered"] == overall["answered"] + overall["abandoned"] + overall["unserved"]
    assert 0 < overall["service_level"] <= 1
    assert overall["asa_s"] >= 3  # the teller's answer delay counts
    assert set(figures["result"]["by_hour"]) == {"09:00", "10:00", "11:00"}
    assert set(figures["result"]["by_group"]) == {"generalist", "senior", "corporate"}
    assert 0 < figures["result"]["by_group"]["senior"]["occupancy"] <= 1
    assert figures["target"] == "80/20"


def test_find_staffing_reports_the_smallest_group_meeting_the_target():
    figures = json.loads(
        run_command("--find-staffing", "--target", "90/20", "--hours", "10-12", "--json")
    )
    needed = figures["tellers_for_day"]
    trials = {t["tellers"]: t for t in figures["trials"]}
    assert trials[needed]["service_level"] >= 0.9
    assert trials[needed - 1]["service_level"] < 0.9
    assert figures["tellers_every_hour"] >= needed
    assert figures["erlang_c_busiest_hour"] >= needed - 3


def test_chart_is_a_png(tmp_path):
    out = tmp_path / "sl.png"
    text = run_command("--hours", "9-11", "--chart", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5000
    assert "Chart written" in text


def test_show_config_round_trips_through_config(tmp_path):
    config = tmp_path / "day.json"
    config.write_text(run_command("--show-config"), encoding="utf-8")
    from_file = json.loads(run_command("--config", str(config), "--hours", "9-11", "--json"))
    built_in = json.loads(run_command("--hours", "9-11", "--json"))
    assert from_file == built_in
    single = json.loads(run_command("--config", str(config), "--tellers", "3", "--json"))
    assert set(single["result"]["by_group"]) == {"generalist"}
    assert single["result"]["by_group"]["generalist"]["tellers"] == 3
