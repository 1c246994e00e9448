"""The status page of ``hodei serve`` over HTTP, as a browser without JavaScript or a script meets it: a real
daemon (``hodei serve`` in a subprocess) on SQLite, its pages read with urllib. The pages' behaviour in a
real browser (refresh in place, the explain form, the console) is tests/test_ui_browser.py; the fleet's
filters and paging and the decisions ring are checked here on their own too.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hodei.domain import HealthStatus, Provider, ProviderState, ProviderStatus
from hodei.errors import InvalidInput
from hodei.services import status
from hodei.settings import Settings
from hodei.testing.serve import Served, clean_environment, hodei_command, serve
from hypothesis import given, settings
from hypothesis import strategies as st

SECRET = "s3cr3t-registry-password-x9"
TOKEN = "ui-test-token-0123456789"
ROOT = Path(__file__).resolve().parents[1]


def hodei(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hodei_command(), *args], cwd=workdir, capture_output=True, text=True, timeout=120,
                          env=clean_environment(HODEI_CONFIG=str(workdir / "hodei.toml"), HODEI_PLUGINS_ENABLE="static"))


def write_config(workdir: Path, *, ui_listen: str = "127.0.0.1:0", token: bool = False) -> None:
    token_line = 'token_file = "api-token"' if token else ""
    (workdir / "hodei.toml").write_text(
        '[database]\nurl = "sqlite:///hodei.db"\n[plugins]\nenable = ["static"]\n'
        '[health]\ninterval_seconds = 0.3\ntimeout_seconds = 2.0\n[daemon]\npoll_seconds = 0.1\n'
        '[metrics]\nlisten = ""\n'
        f'[api]\nlisten = "127.0.0.1:0"\n{token_line}\n'
        f'[ui]\nlisten = "{ui_listen}"\nrefresh_seconds = 1\n', encoding="utf-8")
    if token:
        (workdir / "api-token").write_text(TOKEN + "\n", encoding="utf-8")
        (workdir / "api-token").chmod(0o600)


def seed(workdir: Path) -> None:
    """The seed's example providers, a static one, and a Docker one whose config holds a secret."""
    assert hodei(workdir, "db", "upgrade").returncode == 0
    applied = hodei(workdir, "providers", "apply", "-f", str(ROOT / "config" / "providers.example.toml"))
    assert applied.returncode == 0, applied.stderr
    added = hodei(workdir, "providers", "add", "edge", "--type", "static", "--label", "tier=edge",
                  "--preferred-region", "eu-west-1")
    assert added.returncode == 0, added.stderr
    secret = ('{"type": "docker", "registry_auth": {"username": "ci", "password": "' + SECRET + '"}}')
    added = hodei(workdir, "providers", "add", "private-registry", "--type", "docker", "--config", secret)
    assert added.returncode == 0, added.stderr


def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8"), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8"), exc.headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("ui")
    write_config(workdir)
    seed(workdir)
    with serve(workdir / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as served:
        yield served


def test_the_fleet_page_lists_every_provider_of_the_seed_with_its_state(daemon: Served) -> None:
    assert daemon.ui_url is not None and daemon.ui_url.startswith("http://127.0.0.1:")
    code, page, headers = get(daemon.ui_url)
    assert code == 200 and headers["content-type"].startswith("text/html")
    for name in ("Production Kubernetes", "Local Docker", "Lambda us-east-1", "edge", "private-registry"):
        assert f'data-provider="{name}"' in page, name
    row = re.search(r'<tr data-provider="edge">.*?</tr>', page, re.S)
    assert row is not None
    assert "static" in row[0] and "ACTIVE" in row[0] and "eu-west-1" in row[0] and "tier=edge" in row[0]
    assert 'aria-label="0 of 10 slots used"' in row[0]
    # Without JavaScript the page reloads itself; with it, the script refreshes it in place.
    assert '<noscript><meta http-equiv="refresh" content="1"></noscript>' in page
    assert '<script src="/static/refresh.js" defer></script>' in page
    # Nothing inline: the policy forbids it, so a page that needed it would be broken.
    assert "content-security-policy" in headers and "script-src 'self'" in headers["content-security-policy"]
    assert "<script>" not in page and " style=" not in page


def test_no_page_shows_a_secret_config_value(daemon: Served) -> None:
    assert daemon.ui_url is not None
    pages = [daemon.ui_url, daemon.ui_url + "decisions", daemon.ui_url + "replicas",
             daemon.ui_url + "providers/private-registry",
             daemon.ui_url + "providers/private-registry?requirements=" + urllib.parse.quote('{"cpu": 1}')]
    for url in pages:
        code, page, _ = get(url)
        assert code == 200, url
        assert SECRET not in page, url
    _, provider, _ = get(daemon.ui_url + "providers/private-registry")
    assert "<code>registry_auth.password</code></th><td><code>***</code>" in provider
    assert "<code>registry_auth.username</code></th><td><code>ci</code>" in provider


def test_the_filters_narrow_the_fleet_and_the_form_keeps_them(daemon: Served) -> None:
    assert daemon.ui_url is not None
    _, page, _ = get(daemon.ui_url + "?type=static")
    assert 'data-provider="edge"' in page and 'data-provider="Local Docker"' not in page
    assert '<option value="static" selected>static</option>' in page
    _, page, _ = get(daemon.ui_url + "?region=us-west-2")
    assert 'data-provider="Production Kubernetes"' in page and 'data-provider="edge"' not in page
    _, page, _ = get(daemon.ui_url + "?status=DISABLED")
    assert "No provider matches these filters." in page
    _, page, _ = get(daemon.ui_url + "?name=LOCAL")
    assert 'data-provider="Local Docker"' in page and 'data-provider="edge"' not in page


def test_a_provider_page_shows_its_history_with_actors_and_its_workers(daemon: Served) -> None:
    assert daemon.ui_url is not None and daemon.address is not None
    provisioned = subprocess.run([*hodei_command(), "--server", daemon.address, "workers", "provision",
                                  "-r", "-", "--format", "json"], input='{"required_labels": {"tier": "edge"}}',
                                 capture_output=True, text=True, timeout=60, env=clean_environment())
    assert provisioned.returncode == 0, provisioned.stderr
    code, page, _ = get(daemon.ui_url + "providers/edge")
    assert code == 200
    history = page[page.index('id="history"'):]
    assert "created" in history and "cli " in history  # the actor of its creation
    workers = page[page.index('id="workers"'):page.index('id="history"')]
    assert "RUNNING" in workers
    # The provision is among the recent decisions, with the winner and how it ended.
    _, decisions, _ = get(daemon.ui_url + "decisions")
    assert "provision" in decisions and "provisioned on edge" in decisions
    assert re.search(r"\d+ rejected by <strong>(status|health|labels)</strong>", decisions)


def test_the_explain_form_answers_without_javascript(daemon: Served) -> None:
    assert daemon.ui_url is not None
    query = urllib.parse.urlencode({"requirements": '{"required_labels": {"tier": "edge"}}'})
    _, page, _ = get(daemon.ui_url + "providers/Local%20Docker?" + query)
    answer = page[page.index('id="answer"'):]
    assert "Local Docker does not fit: rejected by" in answer and "labels" in answer
    assert "report for this job" in answer and "selected edge" in answer
    _, page, _ = get(daemon.ui_url + "providers/edge?" + urllib.parse.urlencode({"requirements": "{cpu: [1"}))
    assert 'class="problem"' in page and "requirements" in page  # a bad document is named, not a 500


def test_unknown_pages_and_methods(daemon: Served) -> None:
    assert daemon.ui_url is not None
    assert get(daemon.ui_url + "nowhere")[0] == 404
    assert get(daemon.ui_url + "providers/no-such-provider")[0] == 404
    assert get(daemon.ui_url, data=b"x=1")[0] == 405
    assert get(daemon.ui_url + "static/hodei.css")[0] == 200
    assert get(daemon.ui_url + "static/../app.py")[0] == 404


@pytest.mark.parametrize("path", [
    "providers/%00", "providers/%ff%fe", "providers/%E2%80%AEevil", "providers/" + "x" * 100_000,
    "?page=" + "9" * 5000, "?page=NaN", "?page=-1", "?status=%00&health=%ff&type=" + "t" * 10_000,
    "providers/edge?requirements=" + urllib.parse.quote("[" * 100_000),
    "providers/edge?requirements=" + urllib.parse.quote('{"cpu": NaN, "required_labels": {"a\u0000": "b"}}'),
    "providers/edge?requirements=" + urllib.parse.quote("a: &a [*a]"),
])
def test_hostile_requests_are_answered_never_a_server_error(daemon: Served, path: str) -> None:
    assert daemon.ui_url is not None
    code, page, _ = get(daemon.ui_url + path)
    assert code < 500, (code, page[:500])
    assert "Traceback" not in page
    assert get(daemon.ui_url)[0] == 200  # and the page still answers


def test_a_form_past_its_limit_is_refused_by_name(guarded: Served) -> None:
    assert guarded.ui_url is not None
    code, page, _ = get(guarded.ui_url + "signin", data=b"token=" + b"x" * 20_000)
    assert code == 400 and "form: more than 16384 bytes" in page


def test_replicas_page_names_this_daemon_and_what_it_owns(daemon: Served) -> None:
    assert daemon.ui_url is not None and daemon.address is not None
    _, page, _ = get(daemon.ui_url + "replicas")
    assert "this one" in page and daemon.address in page
    assert "<td>5</td>" in page  # it owns all five providers, alone
    assert '<a href="/providers/Local%20Docker">Local Docker</a>' in page


# -- the token ------------------------------------------------------------------------------------


def test_beyond_loopback_the_settings_refuse_a_status_page_without_the_token(tmp_path: Path) -> None:
    write_config(tmp_path, ui_listen="0.0.0.0:0")
    started = hodei(tmp_path, "serve")
    assert started.returncode != 0
    assert "[ui] listen = '0.0.0.0:0' is not a loopback address, so [api] token_file is required" in started.stderr
    with pytest.raises(InvalidInput):
        from hodei.settings import load_settings

        load_settings(tmp_path / "hodei.toml")
    assert Settings.model_validate({"ui": {"listen": "0.0.0.0:9465"}, "api": {"token_file": "t"}}).ui.listen


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("ui-token")
    write_config(workdir, ui_listen="0.0.0.0:0", token=True)
    seed(workdir)
    with serve(workdir / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as served:
        # Listening on every address; reached here on loopback only.
        assert served.ui_url is not None
        served.ui_url = served.ui_url.replace("0.0.0.0", "127.0.0.1")
        yield served


def test_with_the_token_every_page_refuses_a_caller_without_it(guarded: Served) -> None:
    assert guarded.ui_url is not None
    for path in ("", "decisions", "replicas", "providers/edge", "nowhere"):
        code, page, headers = get(guarded.ui_url + path)
        assert code == 401, path
        assert 'name="token"' in page and "edge" not in page.split("<main", 1)[1].replace('value="/providers/edge"', "")
        assert headers["www-authenticate"].startswith("Bearer")
    assert get(guarded.ui_url, {"authorization": "Bearer wrong"})[0] == 401
    # The bearer header, as the API takes it.
    code, page, _ = get(guarded.ui_url, {"authorization": f"Bearer {TOKEN}"})
    assert code == 200 and 'data-provider="edge"' in page and TOKEN not in page


def test_the_sign_in_form_sets_an_http_only_cookie_that_is_not_the_token(guarded: Served) -> None:
    assert guarded.ui_url is not None
    form = urllib.parse.urlencode({"token": "wrong", "next": "/replicas"}).encode()
    code, page, _ = get(guarded.ui_url + "signin", data=form)
    assert code == 401 and "That is not the token" in page
    form = urllib.parse.urlencode({"token": TOKEN, "next": "//evil.example/"}).encode()
    code, _, headers = get(guarded.ui_url + "signin", data=form)
    assert code == 303 and headers["location"] == "/"  # never to another site
    form = urllib.parse.urlencode({"token": TOKEN, "next": "/replicas"}).encode()
    code, _, headers = get(guarded.ui_url + "signin", data=form)
    assert code == 303 and headers["location"] == "/replicas"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    session = cookie.split(";", 1)[0]
    code, page, _ = get(guarded.ui_url + "replicas", {"cookie": session})
    assert code == 200 and "this one" in page
    assert get(guarded.ui_url, {"cookie": session + "0"})[0] == 401


# -- the fleet's filters and pages ------------------------------------------------------------------


def _fleet(count: int) -> status.Snapshot:
    providers, states = [], {}
    for i in range(count):
        provider = Provider(id=uuid.UUID(int=i + 1), name=f"p{i:05d}", provider_type=("static", "docker")[i % 2],
                            config={}, status=(ProviderStatus.ACTIVE, ProviderStatus.DISABLED)[i % 3 == 0],
                            max_workers=4, preferred_region=f"r{i % 5}")
        providers.append(provider)
        if i % 4:
            states[provider.id] = ProviderState(health=HealthStatus.HEALTHY, checked_at=datetime.now(UTC),
                                                active_workers=i % 5)
    return status.Snapshot(providers, states, [])


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 450), page=st.integers(-3, 8), kind=st.sampled_from(["", "static", "docker"]),
       wanted_status=st.sampled_from(["", "ACTIVE", "DISABLED"]),
       health=st.sampled_from(["", "Healthy", status.NEVER_CHECKED]))
def test_fleet_pages_hold_every_match_once_by_name(count: int, page: int, kind: str, wanted_status: str,
                                                    health: str) -> None:
    seen = _fleet(count)
    wanted = status.FleetFilter(status=wanted_status, health=health, provider_type=kind)
    first = status.fleet_page(seen, wanted, 1)
    expected = sorted(p.name for p in seen.providers
                      if wanted.matches(p, status.health_of(seen.states.get(p.id))))
    assert first.matched == len(expected) and first.total == count
    assert first.pages == max(1, -(-len(expected) // status.PAGE_SIZE))
    shown = [row.name for number in range(1, first.pages + 1) for row in status.fleet_page(seen, wanted, number).rows]
    assert shown == expected
    asked = status.fleet_page(seen, wanted, page)
    assert 1 <= asked.page <= asked.pages and len(asked.rows) <= status.PAGE_SIZE
    assert sum(first.by_status.values()) == count and sum(first.by_health.values()) == count


def test_a_bar_is_the_share_of_slots_used() -> None:
    row = status.fleet_page(_fleet(4), status.FleetFilter(name="p00003")).rows[0]
    assert (row.used, row.max_workers, row.percent) == (3, 4, 75)


# -- the recent decisions ---------------------------------------------------------------------------


def test_the_decisions_ring_keeps_the_last_n_with_the_reasons_for_the_rest() -> None:
    from hodei.services.decisions import Decisions
    from hodei.services.selection import LocalSelection
    from hodei.testing.selection import provider, selector, state

    fleet = [provider("a", priority=5), provider("b", priority=1), provider("c", status="DISABLED"),
             provider("d"), provider("e")]
    chosen = selector(fleet, {"a": state(), "b": state(), "c": state(), "d": state(health="Unhealthy", reason="x"),
                              "e": state(health="Unhealthy", reason="y")})
    decisions = Decisions(3)
    selection = LocalSelection(lambda: chosen, lambda: chosen.chain, decisions=decisions)
    for _ in range(5):
        selection.select({})
    kept = decisions.latest()
    assert [entry.number for entry in kept] == [5, 4, 3]  # newest first, bounded
    entry = kept[0]
    assert entry.winner == "a" and entry.tier == "any" and entry.kind == "selection"
    assert [name for name, _ in entry.runners_up] == ["b"]
    rejected = {r.filter: (r.count, r.names) for r in entry.rejected}
    assert rejected == {"status": (1, ("c",)), "health": (2, ("d", "e"))}
    decisions.resize(1)
    assert [entry.number for entry in decisions.latest()] == [5]
    nothing = selection.select({"required_labels": {"gpu": "yes"}})
    assert nothing.selected is None and decisions.latest()[0].winner is None


# -- the listener -----------------------------------------------------------------------------------


def test_the_listen_setting_is_checked_like_the_others() -> None:
    from pydantic import ValidationError

    assert Settings().ui.listen == "127.0.0.1:9465"
    assert Settings.model_validate({"ui": {"listen": False}}).ui.listen == ""
    for wrong in ({"listen": True}, {"listen": "localhost"}, {"listen": "127.0.0.1:70000"},
                  {"refresh_seconds": 0}, {"decisions": 0}, {"lisen": "127.0.0.1:1"}):
        with pytest.raises(ValidationError):
            Settings.model_validate({"ui": wrong})


def test_a_held_address_leaves_the_daemon_running_without_a_page(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        write_config(tmp_path, ui_listen=f"127.0.0.1:{port}")
        assert hodei(tmp_path, "db", "upgrade").returncode == 0
        with serve(tmp_path / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}) as served:
            assert served.ui_url is None
            assert served.address is not None  # the API answers all the same
            assert (f"no status page: status page ([ui] listen) cannot listen on 127.0.0.1:{port}: "
                    "Address already in use") in served.log()
    write_config(tmp_path, ui_listen="")
    with serve(tmp_path / "hodei.toml", env={"HODEI_PLUGINS_ENABLE": "static"}) as served:
        assert "status page off ([ui] listen is empty)" in served.log()


def test_replicas_on_one_database_each_show_who_owns_what(hodei_postgres_url: str, tmp_path: Path) -> None:
    from hodei import database
    from hodei.plugins import make_plugin_manager
    from hodei.store import Store

    engine = database.create_engine(hodei_postgres_url)
    database.upgrade(engine)
    store = Store(engine, make_plugin_manager(enable=["static"]))
    store.apply([{"name": f"p-{i:03d}", "provider_type": "static"} for i in range(60)])
    store.close()
    configs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_config(tmp_path / name)
        config = tmp_path / name / "hodei.toml"
        config.write_text(config.read_text().replace('url = "sqlite:///hodei.db"', f'url = "{hodei_postgres_url}"'))
        configs.append(config)
    with serve(configs[0], ui=True) as first, serve(configs[1], ui=True) as second:
        def owned(served: Served) -> list[int]:
            assert served.ui_url is not None
            page = get(served.ui_url + "replicas")[1]
            return [int(n) for n in re.findall(r"<td>(\d+)</td>\s*</tr>", page)]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (len(owned(first)) == 2 and sum(owned(first)) == 60):
            time.sleep(0.2)
        assert len(owned(first)) == 2 and sum(owned(first)) == 60 and min(owned(first)) > 0
        assert sorted(owned(second)) == sorted(owned(first))  # both tell the same division
        assert "this one" in get(second.ui_url + "replicas")[1]  # type: ignore[operator]
        # Names PostgreSQL cannot even be asked about are answered as any unknown name.
        for name in ("%00", "%ff", "x" * 5000, "p-001%00"):
            assert get(f"{first.ui_url}providers/{name}")[0] in (400, 404), name
        assert get(f"{first.ui_url}providers/p-001")[0] == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_reload_applies_the_refresh_and_the_ring_and_keeps_the_address(tmp_path: Path) -> None:
    from hodei import database
    from hodei.daemon import Daemon
    from hodei.settings import load_settings
    from hodei.testing.daemon import running

    config = tmp_path / "hodei.toml"
    text = ('[database]\nurl = "sqlite:///hodei.db"\n[api]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = ""\n'
            '[ui]\nlisten = "127.0.0.1:0"\nrefresh_seconds = 5\ndecisions = 10\n')
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config)
    engine = database.create_engine(settings.database.url)
    database.upgrade(engine)
    engine.dispose()
    async with running(Daemon(settings, config_path=config)) as daemon:
        url = daemon.ui.url
        assert url is not None
        config.write_text(text.replace("refresh_seconds = 5", "refresh_seconds = 2").replace(
            "decisions = 10", "decisions = 3").replace('listen = "127.0.0.1:0"\nrefresh', 'listen = "127.0.0.1:1"\nrefresh'),
            encoding="utf-8")
        assert await daemon.reload() == ["ui.listen"]  # the address needs a restart; the rest is live
        assert daemon.ui.page.refresh == 2 and daemon.settings.ui.refresh_seconds == 2
        assert daemon.decisions.latest() == [] and daemon.decisions.size == 3
        assert daemon.ui.url == url and daemon.settings.ui.listen == "127.0.0.1:0"


# -- the placement queue and cooldowns --------------------------------------------------------------


def test_the_queue_page_shows_what_waits_and_the_fleet_a_cooldown(tmp_path: Path) -> None:
    write_config(tmp_path)
    config = tmp_path / "hodei.toml"
    config.write_text(config.read_text() + "[cooldown]\nafter_failures = 1\ninitial_seconds = 600\n")
    assert hodei(tmp_path, "db", "upgrade").returncode == 0
    assert hodei(tmp_path, "providers", "add", "single", "--type", "static", "--max-workers", "1",
                 "--label", "tier=single").returncode == 0
    assert hodei(tmp_path, "providers", "add", "flaky", "--type", "static", "--label", "tier=flaky", "--config",
                 '{"type": "static", "fail_provision": "backend refused"}').returncode == 0
    with serve(config, env={"HODEI_PLUGINS_ENABLE": "static"}, ui=True) as served:
        assert served.ui_url is not None and served.address is not None
        _, page, _ = get(served.ui_url + "queue")
        assert "Nothing waits" in page and '<a href="/queue" aria-current="page">Queue</a>' in page

        def provision(tier: str, *wait: str) -> subprocess.Popen[str]:
            process = subprocess.Popen(
                [*hodei_command(), "--server", served.address or "", "workers", "provision", "-r", "-", *wait],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=clean_environment())
            assert process.stdin is not None
            process.stdin.write(json.dumps({"required_labels": {"tier": tier}}))
            process.stdin.close()
            return process

        assert provision("flaky").wait(60) != 0  # failed: the provider cools down
        row = re.search(r'<tr data-provider="flaky">.*?</tr>', get(served.ui_url)[1], re.S)
        assert row is not None and "until" in row[0] and "1 failed provisions in a row" in row[0]
        assert "backend refused" in row[0]
        assert "skipped by selection until then" in get(served.ui_url + "providers/flaky")[1]

        first = provision("single")
        assert first.wait(60) == 0, first.stderr.read() if first.stderr else ""
        waiting = provision("single", "--wait", "60s")
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "data-request=" not in get(served.ui_url + "queue")[1]:
                time.sleep(0.1)
            page = get(served.ui_url + "queue")[1]
            row = re.search(r"<tr data-request=.*?</tr>", page, re.S)
            assert row is not None, page
            assert "<td>1</td>" in row[0]  # its position
            assert "single" in row[0]  # why: the one provider that fits is full
        finally:
            workers = subprocess.run([*hodei_command(), "--server", served.address, "workers", "list", "-o", "json"],
                                     capture_output=True, text=True, env=clean_environment(), timeout=60)
            for worker in json.loads(workers.stdout):
                subprocess.run([*hodei_command(), "--server", served.address, "workers", "release", worker["id"]],
                               capture_output=True, text=True, env=clean_environment(), timeout=60)
            assert waiting.wait(60) == 0  # placed once the slot was freed
        assert "Nothing waits" in get(served.ui_url + "queue")[1]
