"""lbkit.steering.simulate and ``lbkit steer simulate``: steering configurations read from
JSON, seeded simulations of their traffic, and every rejected document."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from lbkit.cli import main
from lbkit.errors import ArgumentTypeError, ConfigError
from lbkit.steering.simulate import scenario_from_json, simulate

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "steering.json"


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "pools": [
            {"id": "eu", "weight": 3, "endpoints": [{"id": "a"}, {"id": "b", "weight": 3}]},
            {"id": "us", "weight": 1, "endpoints": [{"id": "c"}]},
        ],
        "policy": "random",
        "seed": 5,
    }
    base.update(changes)
    return base


def test_simulation_follows_the_weights(impl: Any) -> None:
    """Pools and endpoints get their weight shares, and the report states them."""
    report = simulate(scenario_from_json(document()), requests=20_000)
    assert report.pools["eu"] / 20_000 == pytest.approx(0.75, abs=0.015)
    assert report.endpoints[("eu", "b")] / report.pools["eu"] == pytest.approx(0.75, abs=0.015)
    assert report.expected_pool_share == {"eu": 0.75, "us": 0.25}
    assert report.expected_endpoint_share[("eu", "b")] == 0.75
    assert sum(report.endpoints.values()) == 20_000


def test_simulation_reproduces_with_its_seed(impl: Any) -> None:
    """The same document and seed give the same counts; another seed gives others."""

    def run(seed: int) -> Any:
        return simulate(scenario_from_json(document(seed=seed)), requests=2000).endpoints

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_unhealthy_endpoints_in_the_document_take_no_traffic(impl: Any) -> None:
    """An endpoint marked healthy: false is down before the first request."""
    pools = [{"id": "eu", "endpoints": [{"id": "a"}, {"id": "b"}, {"id": "c", "healthy": False}]}]
    report = simulate(scenario_from_json(document(pools=pools)), requests=500)
    assert ("eu", "c") not in report.endpoints
    assert ("eu", "c") not in report.expected_endpoint_share


def test_rules_fixed_responses_and_unserved_are_counted(impl: Any) -> None:
    """Fixed responses are counted per status; requests nothing may serve are unserved."""
    rules = [
        {
            "name": "gone",
            "condition": {"field": "path", "op": "equals", "value": "/old"},
            "fixed_response": {"status": 410},
        }
    ]
    traffic = [{"share": 1, "request": {"path": "/old"}}, {"share": 1, "request": {}}]
    pools = [{"id": "p", "endpoints": [{"id": "a", "healthy": False}]}]
    scenario = scenario_from_json(
        document(pools=pools, rules=rules, traffic=traffic, fail_open=False)
    )
    report = simulate(scenario, requests=1000)
    assert report.fixed_responses[410] + report.unserved == 1000
    assert 400 < report.unserved < 600
    assert report.pools == {}


def test_cookie_affinity_keeps_clients_on_one_endpoint(impl: Any) -> None:
    """With cookie affinity each simulated client returns its cookie and stays put."""
    pools = [{"id": "p", "endpoints": [{"id": name} for name in "abcd"]}]
    scenario = scenario_from_json(
        document(pools=pools, affinity={"by": "cookie"}, clients=1, policy="failover")
    )
    report = simulate(scenario, requests=200)
    assert len(report.endpoints) == 1


def test_concurrency_feeds_least_outstanding(impl: Any) -> None:
    """With requests kept outstanding, least-outstanding P2C evens out unequal luck."""
    pools = [{"id": "p", "endpoints": [{"id": name} for name in "abcd"]}]
    scenario = scenario_from_json(
        document(pools=pools, endpoint_picker="least_outstanding", policy="failover")
    )
    report = simulate(scenario, requests=4000, concurrency=8)
    assert max(report.endpoints.values()) - min(report.endpoints.values()) < 200
    assert scenario.balancer.pool_stats.outstanding("p") == 0


def test_rtt_samples_feed_dynamic_steering(impl: Any) -> None:
    """RTT samples in the document steer dynamic policy per PoP."""
    rtt = [
        {"pool": "eu", "location": "FRA", "rtt": 0.01},
        {"pool": "us", "location": "FRA", "rtt": 0.09},
    ]
    traffic = [{"share": 1, "request": {"pop": "FRA"}}]
    scenario = scenario_from_json(document(policy="dynamic", rtt=rtt, traffic=traffic))
    assert simulate(scenario, requests=100).pools == {"eu": 100}


def test_geo_policy_options_and_slow_start_are_read(impl: Any) -> None:
    """A policy object with options and a slow_start object build the documented objects."""
    scenario = scenario_from_json(
        document(
            policy={"name": "geo", "countries": {"US": ["us"]}},
            picker_options={"slow_start": {"window": 30, "aggression": 2}},
            traffic=[{"share": 1, "request": {"country": "US"}}],
        )
    )
    assert simulate(scenario, requests=50).pools == {"us": 50}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pools": []}, "$.pools is empty; a load balancer needs at least one pool"),
        ({"colour": 1}, "$ has the unknown key 'colour'; the keys are pools, policy"),
        ({"pools": "eu"}, "$.pools is a string; it must be a list"),
        (
            {"pools": [{"id": "p", "endpoints": [{"id": "a", "weight": -1}]}]},
            "$.pools[0].endpoints[0]: weight is -1; weights must be finite and >= 0",
        ),
        (
            {"pools": [{"id": "p", "endpoints": [{"id": "a", "healthy": "yes"}]}]},
            "$.pools[0].endpoints[0].healthy is a string; it must be a boolean",
        ),
        ({"policy": 3}, "$.policy is a number; it must be a string or an object"),
        ({"policy": {"tau": 3}}, "$.policy.name is null; it must be a string"),
        (
            {"policy": {"name": "dynamic", "tau": -3}},
            "$.policy: tau is -3.0; it must be finite and > 0 seconds",
        ),
        ({"fallback_pool": "ap"}, "$: fallback_pool is 'ap'; it must be the id of a configured"),
        ({"seed": -1}, "$.seed is -1; it must be in 0..18446744073709551615"),
        ({"traffic": []}, "$.traffic is empty; give at least one kind of request"),
        (
            {"traffic": [{"share": 0, "request": {}}]},
            "$.traffic[0].share is 0.0; it must be > 0",
        ),
        (
            {"traffic": [{"request": {"client_ip": "x"}}]},
            "$.traffic[0].request: client_ip is 'x'; it must be an IPv4 or IPv6 address",
        ),
        ({"clients": 0}, "$.clients is 0; it must be in 1..16777216"),
        (
            {"affinity": {"by": "cookie", "failover": "maybe"}},
            "$.affinity: failover is 'maybe'; it must be one of",
        ),
        (
            {"rtt": [{"pool": "mars", "location": "FRA", "rtt": 0.1}]},
            "$.rtt[0]: no pool has the id 'mars'",
        ),
    ],
)
def test_bad_documents_are_rejected(changes: dict[str, Any], message: str) -> None:
    """A document of the wrong shape is a ConfigError naming the place in it."""
    with pytest.raises(ConfigError) as raised:
        scenario_from_json(document(**changes))
    assert str(raised.value).startswith(message)


def test_bad_simulation_arguments_are_rejected() -> None:
    """Request counts below 1, negative concurrency and non-int counts are errors."""
    scenario = scenario_from_json(document())
    with pytest.raises(ConfigError, match="requests is 0; it must be >= 1"):
        simulate(scenario, requests=0)
    with pytest.raises(ConfigError, match="concurrency is -1; it must be >= 0"):
        simulate(scenario, requests=1, concurrency=-1)
    with pytest.raises(ArgumentTypeError, match="requests is float; it must be an int"):
        simulate(scenario, requests=1.0)  # type: ignore[arg-type]


# --- the command line ---------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def test_cli_prints_shares_beside_expectations(impl: Any) -> None:
    """lbkit steer simulate prints each pool and endpoint with its share and the expected one."""
    status, text = run_cli("steer", "simulate", str(EXAMPLE), "--requests", "4000")
    assert status == 0
    lines = text.splitlines()
    assert lines[0] == (
        "policy    random over 3 pools, fallback standby; endpoints by least_outstanding"
    )
    assert lines[1] == "requests  4,000 from up to 10,000 clients, seed 7"
    assert lines[3].split() == ["pool", "/", "endpoint", "health", "requests", "share", "expected"]
    assert any(line.split()[:3] == ["eu-4", "down", "0"] for line in lines)
    assert "fixed responses: 410 x" in text


def test_cli_seed_option_overrides_the_document(impl: Any, tmp_path: Path) -> None:
    """--seed replaces the document's seed; the same seed prints the same report."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document()), encoding="utf-8")
    first = run_cli("steer", "simulate", str(path), "--requests", "300", "--seed", "9")
    again = run_cli("steer", "simulate", str(path), "--requests", "300", "--seed", "9")
    other = run_cli("steer", "simulate", str(path), "--requests", "300", "--seed", "10")
    assert first == again
    assert first != other
    assert "seed 9" in first[1]


def test_cli_reports_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing files, bad JSON and bad documents exit 1 with a one-line error."""
    missing = tmp_path / "missing.json"
    assert run_cli("steer", "simulate", str(missing))[0] == 1
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert run_cli("steer", "simulate", str(broken))[0] == 1
    assert "not valid JSON" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pools": []}), encoding="utf-8")
    assert run_cli("steer", "simulate", str(bad))[0] == 1
    assert capsys.readouterr().err == (
        f"lbkit: error: {bad}: $.pools is empty; a load balancer needs at least one pool\n"
    )


def test_cli_rejects_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--requests below 1 and negative --concurrency are usage errors (exit 2)."""
    with pytest.raises(SystemExit) as raised:
        run_cli("steer", "simulate", str(EXAMPLE), "--requests", "0")
    assert raised.value.code == 2
    assert "--requests is 0; it must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("steer", "simulate", str(EXAMPLE), "--concurrency", "-2")
    assert "--concurrency is -2; it must be >= 0" in capsys.readouterr().err
