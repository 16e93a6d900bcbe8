"""Tests of the Fruits-360 sample downloader against a local fake of the GitHub API."""

from __future__ import annotations

import http.server
import io
import json
import logging
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from PIL import Image

from fruits_kedro.tools import fetch
from fruits_kedro.tools.fetch import has_images, main, spaced

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REPO = "fruits-360/fruits-360-100x100"
CONTENTS = f"/repos/{REPO}/contents"
# Training has 5 classes of 5 images (plus clutter); Test has 3 of those classes and 1 other.
TRAINING_CLASSES = ["Apple 10", "Banana", "Cherry", "Kiwi", "Lemon"]
TEST_CLASSES = ["Apple 10", "Cherry", "Kiwi", "Mango"]
FILES = ["a_0_100.jpg", "b_1_100.jpg", "c_2_100.jpeg", "d_3_100.png", "e_4_100.jpg"]


def image_bytes(name: str, seed: int) -> bytes:
    """A tiny real image of Pillow, JPEG or PNG after ``name``, coloured by ``seed``."""
    buffer = io.BytesIO()
    color = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG" if name.endswith(".png") else "JPEG")
    return buffer.getvalue()


class FakeGitHub(http.server.ThreadingHTTPServer):
    """A contents API and a raw file server for the repo folder ``root``."""

    daemon_threads = True
    request_queue_size = 64  # the downloader opens 8 connections at once; 5 would stall SYNs 1 s

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.root = root
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.fail: dict[str, int] = {}  # path prefix -> HTTP status to answer
        self.requests: list[tuple[str, dict[str, str]]] = []


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers ``/repos/<repo>/contents/<path>?ref=main`` with JSON and ``/raw/<path>`` with bytes."""

    server: FakeGitHub

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers)))
        url = urlsplit(self.path)
        path = unquote(url.path)
        for prefix, status in self.server.fail.items():
            if path.startswith(prefix):
                return self.send_error(status)
        if path.startswith(CONTENTS) and parse_qs(url.query).get("ref") == ["main"]:
            return self.listing(path.removeprefix(CONTENTS).strip("/"))
        if path.startswith("/raw/") and (self.server.root / path[5:]).is_file():
            return self.reply((self.server.root / path[5:]).read_bytes(), "image/jpeg")
        return self.send_error(404)

    def listing(self, relative: str) -> None:
        folder = self.server.root / relative
        if not folder.is_dir():
            return self.send_error(404)
        entries = [self.entry(child) for child in sorted(folder.iterdir(), reverse=True)]
        return self.reply(json.dumps(entries).encode(), "application/json")

    def entry(self, child: Path) -> dict[str, str | None]:
        relative = child.relative_to(self.server.root).as_posix()
        kind = "dir" if child.is_dir() else "file"
        raw = f"{self.server.base}/raw/{quote(relative)}" if kind == "file" else None
        return {"name": child.name, "path": relative, "type": kind, "download_url": raw}

    def reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tiny Fruits-360 repo on disk, with clutter the downloader must ignore."""
    root = tmp_path / "repo"
    seed = 0
    for split, classes in (("Training", TRAINING_CLASSES), ("Test", TEST_CLASSES)):
        for label in classes:
            (root / split / label).mkdir(parents=True)
            (root / split / label / "notes.txt").write_text("not an image")
            for name in FILES:
                seed += 1
                (root / split / label / name).write_bytes(image_bytes(name, seed))
    (root / "Training" / "README.md").write_text("# clutter")
    return root


@pytest.fixture
def server(repo: Path) -> Iterator[FakeGitHub]:
    """The fake GitHub, serving ``repo`` from a thread; always shut down."""
    httpd = FakeGitHub(repo)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No real token leaks into the tests; the downloader's INFO logs are captured."""
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    caplog.set_level(logging.INFO, logger="fruits_kedro.tools.fetch")


def run(server_url: str, dest: Path, *extra: str) -> int:
    """Run the command line against ``server_url`` with a short timeout."""
    return main(["--dest", str(dest), "--api-url", server_url, "--timeout", "2", *extra])


def files_under(folder: Path) -> set[str]:
    """The files below ``folder``, as POSIX paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def expected_sample() -> set[str]:
    """The picks of ``--classes 3 --per-class 2`` over the fake repo.

    Classes: indices 0, 1, 3 of 5 -> Apple 10, Banana, Kiwi. Training files: indices 0, 2
    of 5. Test: ``2 // 2 = 1`` file (index 0) for the classes that Test holds.
    """
    training = {f"Training/{c}/{f}" for c in ("Apple 10", "Banana", "Kiwi") for f in FILES[::2][:2]}
    test = {f"Test/{c}/{FILES[0]}" for c in ("Apple 10", "Kiwi")}
    return training | test


def test_downloads_evenly_spaced_sample_with_same_bytes(
    server: FakeGitHub, repo: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "raw"
    assert run(server.base, dest, "--classes", "3", "--per-class", "2") == 0
    assert files_under(dest) == expected_sample()
    for relative in expected_sample():
        assert (dest / relative).read_bytes() == (repo / relative).read_bytes()


def test_picks_are_deterministic_and_default_to_the_whole_small_repo(
    server: FakeGitHub, tmp_path: Path
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert run(server.base, first) == 0
    assert run(server.base, second) == 0
    assert files_under(first) == files_under(second)
    # Defaults (8 classes, 6 + 3 per class) exceed the fake repo: everything with an image.
    assert len(files_under(first)) == 5 * 5 + 3 * 3
    assert not any(name.endswith((".txt", ".md", ".part")) for name in files_under(first))


def test_spaced_picks_evenly_and_keeps_order() -> None:
    assert spaced(list(range(10)), 3) == [0, 3, 6]
    assert spaced(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spaced(list(range(3)), 3) == [0, 1, 2]
    assert spaced(["a", "b"], 6) == ["a", "b"]
    assert len(set(spaced(list(range(7)), 6))) == 6


def test_skips_when_dest_already_has_images(
    server: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "raw"
    (dest / "mine").mkdir(parents=True)
    (dest / "mine" / "photo.JPG").write_bytes(image_bytes("photo.jpg", 1))
    assert run(server.base, dest) == 0
    assert server.requests == []
    assert files_under(dest) == {"mine/photo.JPG"}
    assert "skipping" in caplog.text


def test_force_fetches_again(server: FakeGitHub, repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "raw"
    assert run(server.base, dest, "--classes", "3", "--per-class", "2") == 0
    changed = dest / "Training" / "Banana" / FILES[0]
    changed.write_bytes(b"edited")
    assert run(server.base, dest, "--classes", "3", "--per-class", "2") == 0
    assert changed.read_bytes() == b"edited"
    assert run(server.base, dest, "--classes", "3", "--per-class", "2", "--force") == 0
    assert changed.read_bytes() == (repo / "Training" / "Banana" / FILES[0]).read_bytes()


def assert_clear_failure(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], url_start: str
) -> None:
    """One error record naming the failed URL and the offline alternatives; no traceback."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    message = errors[0].getMessage()
    assert f"Could not download the Fruits-360 dataset from {url_start}" in message
    assert "FRUITS_SHARED=<folder>" in message
    assert "--params input_dir=<folder>" in message
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("status", [404, 500, 403])
def test_api_error_fails_clearly(
    server: FakeGitHub,
    tmp_path: Path,
    status: int,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.fail[CONTENTS] = status
    dest = tmp_path / "raw"
    assert run(server.base, dest) == 1
    assert_clear_failure(caplog, capsys, f"{server.base}{CONTENTS}/Training?ref=main")
    assert f"HTTP {status}" in caplog.text
    assert ("GITHUB_TOKEN" in caplog.text) == (status == 403)
    assert not has_images(dest)


def test_failed_download_writes_nothing(
    server: FakeGitHub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.fail["/raw/Training/Kiwi/"] = 500
    dest = tmp_path / "raw"
    assert run(server.base, dest) == 1
    assert_clear_failure(caplog, capsys, f"{server.base}/raw/Training/Kiwi/")
    assert not dest.exists() or files_under(dest) == set()


def test_non_image_download_is_rejected(
    server: FakeGitHub,
    repo: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "Training" / "Lemon" / FILES[0]).write_bytes(b"version https://git-lfs.github.com")
    assert run(server.base, tmp_path / "raw") == 1
    assert_clear_failure(caplog, capsys, f"{server.base}/raw/Training/Lemon/")
    assert "not a JPEG or PNG image" in caplog.text


def test_unreachable_server_fails_clearly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert run(url, tmp_path / "raw") == 1
    assert_clear_failure(caplog, capsys, url)


def test_silent_server_times_out_clearly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert main(["--dest", str(tmp_path / "raw"), "--api-url", url, "--timeout", "0.2"]) == 1
    assert_clear_failure(caplog, capsys, url)
    assert "timed out" in caplog.text


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"<html>sign in</html>", "not JSON"), (b'{"message": "moved"}', "not a list")],
)
def test_not_a_listing_fails_clearly(
    server: FakeGitHub,
    body: bytes,
    reason: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # With --api-url at the raw server, this file is the answer to the Training listing.
    answer = server.root / "repos" / "x" / "y" / "contents" / "Training"
    answer.parent.mkdir(parents=True)
    answer.write_bytes(body)
    assert run(f"{server.base}/raw", server.root.parent / "raw", "--repo", "x/y") == 1
    assert_clear_failure(caplog, capsys, f"{server.base}/raw/repos/x/y/contents/Training")
    assert reason in caplog.text


def test_token_goes_to_the_api_only(
    server: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    assert run(server.base, tmp_path / "raw", "--classes", "1", "--per-class", "1") == 0
    api = [headers for path, headers in server.requests if path.startswith(CONTENTS)]
    raw = [headers for path, headers in server.requests if path.startswith("/raw/")]
    assert api and raw
    assert all(h.get("Authorization") == "Bearer t0ken" for h in api)
    assert all("Authorization" not in h for h in raw)
    assert all(h.get("User-Agent", "").startswith("fruits-kedro-fetch") for h in api + raw)


def test_has_images(tmp_path: Path) -> None:
    assert not has_images(tmp_path / "missing")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.txt").write_text("text")
    (tmp_path / "a" / "b" / ".x.jpg.tmp.part").write_bytes(b"partial")
    assert not has_images(tmp_path)
    (tmp_path / "a" / "b" / "y.JPeG").write_bytes(b"")
    assert has_images(tmp_path)


def test_rejects_non_positive_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--dest", "x", "--classes", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_source_is_an_alias_of_api_url() -> None:
    args = fetch._parser().parse_args(["--dest", "d", "--source", "http://h"])
    assert args.api_url == "http://h"
