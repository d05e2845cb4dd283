"""The `## Python` section of docs/clients.md, executed: its install command in a fresh virtual
environment, and its Python examples in page order (one namespace, as a reader would run them)
against the service, each printing exactly the `text python-output` block that follows it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backoffice_webhooks import Client, admin_pb2

REPOSITORY = Path(__file__).resolve().parents[3]
PAGE = REPOSITORY / "docs" / "clients.md"
FENCE = re.compile(r"^```(\S*)[ \t]*(.*?)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string and content, and its line on the page."""

    lang: str
    marker: str
    code: str
    line: int


def section_blocks() -> list[Block]:
    text = PAGE.read_text()
    start = text.index("\n## Python\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    first_line = text[:start].count("\n") + 1
    return [
        Block(
            lang=match.group(1),
            marker=match.group(2).strip(),
            code=match.group(3),
            line=first_line + section[: match.start()].count("\n") + 1,
        )
        for match in FENCE.finditer(section)
    ]


def examples() -> list[tuple[Block, str | None]]:
    """Each Python example with the output the page shows for it (None: it prints nothing)."""
    found: list[tuple[Block, str | None]] = []
    for block in section_blocks():
        if (block.lang, block.marker) == ("python", "example"):
            found.append((block, None))
        elif (block.lang, block.marker) == ("text", "python-output"):
            assert found and found[-1][1] is None, f"clients.md:{block.line}: output of what?"
            found[-1] = (found[-1][0], block.code)
        else:
            kind = (block.lang, block.marker)
            assert kind == ("sh", "python-install"), f"clients.md:{block.line}: no test runs {kind}"
    return found


@pytest.fixture
def namespace() -> Iterator[dict[str, object]]:
    names: dict[str, object] = {"__name__": "clients_md"}
    yield names
    client = names.get("client")
    if isinstance(client, Client):
        webhook = names.get("webhook")
        if webhook is not None:
            # Leave no webhook behind to receive the other tests' events.
            client.admin.DeleteWebhook(admin_pb2.DeleteWebhookRequest(id=getattr(webhook, "id")))
        client.close()


def test_the_python_examples_run_against_the_service_and_print_what_the_page_shows(
    namespace: dict[str, object],
) -> None:
    found = examples()
    assert len(found) >= 6, "the section lost its examples"
    for block, expected in found:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block.code, f"docs/clients.md:{block.line}", "exec"), namespace)
        assert printed.getvalue() == (expected or ""), f"docs/clients.md:{block.line}"


def test_the_install_command_installs_the_package_into_a_fresh_environment(
    tmp_path: Path,
) -> None:
    [install] = [b for b in section_blocks() if (b.lang, b.marker) == ("sh", "python-install")]
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", install.code],
        cwd=REPOSITORY,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    imported = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import backoffice_webhooks as b, backoffice.webhooks.v1.admin_pb2_grpc as g;"
            "print(b.service_config()['methodConfig'][0]['timeout'], g.WebhookAdminStub.__name__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "10s WebhookAdminStub\n"
