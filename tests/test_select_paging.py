"""A selection report's size does not grow with the fleet: the first few ranked and rejected providers,
every rejection counted by filter, and the rest page by page (``--all``, ``page_size``/``page_token``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2, status_pb2
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.cli import main
from hodei.errors import InvalidInput
from hodei.selection import pages
from hodei.selection.report import MAX_PAGE, SHOWN, Page
from hodei.testing.databases import fill
from hodei.testing.selection import job, provider, selector, state
from hodei.testing.serve import serve
from hypothesis import given, settings
from hypothesis import strategies as st

STATUSES = ["ACTIVE", "ACTIVE", "ACTIVE", "DISABLED", "MAINTENANCE"]


def fleet(count: int, seed: int = 1):
    """``count`` providers, some disabled, full, too small or missing the job's label."""
    rng = random.Random(seed)
    providers, states = [], {}
    for i in range(count):
        name = f"p{rng.randrange(10**6):06d}-{i}"
        providers.append(provider(name, status=rng.choice(STATUSES), priority=rng.choice([0, 5, 9]),
                                  max_workers=4, labels={"env": rng.choice(["prod", "prod", "dev"])}))
        states[name] = state(active=rng.choice([0, 1, 4]), cpu=rng.choice([1, 8]))
    return selector(providers, states)


JOB = job(cpu=2, required_labels={"env": "prod"})


def all_pages(s, j, size: int):
    reports, token = [], ""
    while True:
        report = s.report(j, page=pages.page(j, size, token))
        reports.append(report)
        token = report.next_page_token
        if not token:
            return reports


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 60), size=st.integers(1, 25), seed=st.integers(0, 10**6))
def test_pages_joined_are_the_whole_report(count: int, size: int, seed: int) -> None:
    s = fleet(count, seed)
    whole = s.report(JOB, page=Page(size=None))
    reports = all_pages(s, JOB, size)
    ranked = [(r.candidate.name, r.position, r.score) for p in reports for r in p.ranking]
    assert ranked == [(r.candidate.name, r.position, r.score) for r in whole.ranking]
    assert [r.as_dict() for p in reports for r in p.rejected] == [r.as_dict() for r in whole.rejected]
    assert [r.name for r in whole.rejected] == sorted(r.name for r in whole.rejected)
    for report in reports:  # every page: the same decision, the same counts, at most ``size`` of each
        assert len(report.ranking) <= size and len(report.rejected) <= size
        assert report.summary == whole.summary
        assert report.as_dict()["rejection_counts"] == whole.as_dict()["rejection_counts"]
    assert len(reports) == max(1, -(-max(whole.in_tier, whole.rejected_total) // size))


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 40), seed=st.integers(0, 10**6))
def test_rejections_are_counted_by_filter(count: int, seed: int) -> None:
    s = fleet(count, seed)
    whole = s.report(JOB, page=Page(size=None))
    expected: dict[str, int] = {}
    for rejection in whole.rejected:
        for rule, _ in rejection.reasons:
            expected[rule] = expected.get(rule, 0) + 1
    counted = {c["filter"]: c["count"] for c in s.report(JOB).as_dict()["rejection_counts"]}
    assert counted == expected
    assert whole.rejected_total == len(whole.rejected) and whole.in_tier == len(whole.ranking)


def test_the_default_answer_does_not_grow_with_the_fleet() -> None:
    sizes = []
    for count in (100, 2000):
        report = fleet(count).report(JOB)
        assert len(report.ranking) == SHOWN and len(report.rejected) == SHOWN
        assert report.next_page_token
        sizes.append(len(json.dumps(report.as_dict())) + len(report.text()))
    assert sizes[1] < sizes[0] * 1.2, sizes
    assert sizes[1] < 16_000


def test_the_summary_is_the_checklist_and_counts_past_the_names_it_shows() -> None:
    providers = [provider(f"off{i:02d}", status="DISABLED") for i in range(12)] + [provider("b", status="MAINTENANCE")]
    summary = selector(providers).report(job()).summary
    assert summary == ("0/13 providers available: 13 rejected by status (b: MAINTENANCE, off00: DISABLED, "
                       "off01: DISABLED, off02: DISABLED, off03: DISABLED, off04: DISABLED, off05: DISABLED, "
                       "off06: DISABLED, off07: DISABLED, off08: DISABLED, and 3 more)")
    few = selector([*providers[:2], provider("b", status="MAINTENANCE")]).report(job()).summary
    assert few == "0/3 providers available: 3 not ACTIVE (b: MAINTENANCE, off00: DISABLED, off01: DISABLED)"


def test_the_text_says_what_it_leaves_out() -> None:
    report = fleet(200).report(JOB)
    last = report.text().splitlines()[-1]
    assert last == (f"shown: ranked 1-10 of {report.in_tier}, rejected 1-10 of {report.rejected_total}; "
                    "`hodei select --all` lists every one")
    assert "shown:" not in fleet(200).report(JOB, page=Page(size=None)).text()


def test_explain_ranks_a_provider_far_down_the_tier() -> None:
    s = selector([provider(f"p{i:03d}") for i in range(40)])
    explanation = s.explain("p025", job())
    assert explanation.ranked is not None and explanation.ranked.position == 26
    assert explanation.verdict.startswith("p025 fits, ranked 26 of 40: ")


@pytest.mark.parametrize("size, token, field", [
    (-1, "", "page_size"), (MAX_PAGE + 1, "", "page_size"), (0, "not a token", "page_token"),
    (0, "eyJvIjotMSwiaiI6IngifQ", "page_token"),
])
def test_a_bad_page_is_refused_naming_the_field(size: int, token: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        pages.page(JOB, size, token)
    assert [p.field for p in caught.value.problems] == [field]


def test_a_token_is_only_good_for_its_own_requirements() -> None:
    token = fleet(50).report(JOB).next_page_token
    with pytest.raises(InvalidInput, match="other requirements"):
        pages.page(job(cpu=1), 0, token)


# -- through the API and the CLI --------------------------------------------------------------------


def documents(count: int) -> list[dict]:
    # Health checks that never answer: no state changes between the commands compared.
    return [{"name": f"s{i:03d}", "provider_type": "static", "priority": i % 3, "config": {"hang": True},
             "status": "DISABLED" if i % 4 == 0 else "ACTIVE",
             "required_labels": {"env": "prod" if i % 5 else "dev"}} for i in range(count)]


def served(url: str, folder: Path) -> Path:
    config = folder / "hodei.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[api]\nlisten = "127.0.0.1:0"\n'
                      '[metrics]\nlisten = ""\n[health]\ninterval_seconds = 3600\ntimeout_seconds = 300\n'
                      '[daemon]\nshutdown_grace_seconds = 0.5\n')
    return config


def bad_request(error: grpc.RpcError) -> list[str]:
    """The fields an INVALID_ARGUMENT names (google.rpc.BadRequest in its details)."""
    fields = []
    for key, value in error.trailing_metadata():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    message = error_details_pb2.BadRequest()
                    detail.Unpack(message)
                    fields += [v.field for v in message.field_violations]
    return fields


def test_select_pages_through_the_api(hodei_database_url: str, tmp_path: Path) -> None:
    fill(hodei_database_url, documents(45))
    requirements = json_format.ParseDict({"required_labels": {"env": "prod"}}, struct_pb2.Struct())
    with serve(served(hodei_database_url, tmp_path)) as daemon, grpc.insecure_channel(daemon.address) as channel:
        api = spb_grpc.SelectionServiceStub(channel)
        first = api.Select(spb.SelectRequest(requirements=requirements))
        assert (len(first.ranking), len(first.rejected)) == (SHOWN, SHOWN)
        assert (first.total, first.in_tier, first.rejected_total) == (45, 27, 18)
        assert [(c.filter, c.count) for c in first.rejection_counts] == [("status", 12), ("labels", 9)]
        ranked, rejected, token, seen = list(first.ranking), list(first.rejected), first.next_page_token, 1
        while token:
            page = api.Select(spb.SelectRequest(requirements=requirements, page_size=7, page_token=token))
            assert page.summary == first.summary and page.offset == SHOWN + 7 * (seen - 1)
            ranked += page.ranking
            rejected += page.rejected
            token, seen = page.next_page_token, seen + 1
        assert [r.position for r in ranked] == list(range(1, 28))
        assert [r.name for r in rejected] == sorted(d["name"] for d in documents(45)
                                                    if d["status"] == "DISABLED" or d["name"] in
                                                    {f"s{i:03d}" for i in range(0, 45, 5)})
        error = None
        try:
            api.Select(spb.SelectRequest(requirements=requirements, page_token="x"))
        except grpc.RpcError as exc:
            error = exc
        assert error is not None and error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request(error) == ["page_token"]


def test_select_all_prints_the_same_locally_and_through_the_server(hodei_database_url: str,
                                                                    tmp_path: Path) -> None:
    fill(hodei_database_url, documents(1100))  # more than one page of the API (MAX_PAGE)
    config = served(hodei_database_url, tmp_path)
    job_file = tmp_path / "job.json"
    job_file.write_text('{"required_labels": {"env": "prod"}}')
    with serve(config) as daemon:
        outputs = {}
        for mode, server in (("local", None), ("remote", daemon.address)):
            env = {"HODEI_CONFIG": str(config), "HODEI_DATABASE_URL": hodei_database_url, "HODEI_SERVER": server}
            for output in ("table", "json"):
                result = CliRunner().invoke(main, ["select", "--all", "-r", str(job_file), "-o", output], env=env,
                                            catch_exceptions=False)
                assert result.exit_code == 0, result.output
                outputs[mode, output] = result.output
    assert outputs["local", "table"] == outputs["remote", "table"]
    assert outputs["local", "json"] == outputs["remote", "json"]
    document = json.loads(outputs["local", "json"])
    assert (len(document["ranking"]), len(document["rejected"])) == (document["in_tier"], document["rejected_total"])
    assert document["in_tier"] + document["rejected_total"] == 1100 and document["next_page_token"] == ""
