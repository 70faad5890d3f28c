"""The documentation keeps up with the code: settings, environment, README."""

from __future__ import annotations

import re
from pathlib import Path

from ftauth.conf import KNOWN_KEYS

ROOT = Path(__file__).resolve().parent.parent


def test_settings_reference_documents_every_ftauth_key():
    documented = set(
        re.findall(r"^\| `([A-Z_]+)` \|", (ROOT / "docs/settings.md").read_text(), re.M)
    )
    assert documented == KNOWN_KEYS


def test_sandbox_page_documents_every_sandbox_option():
    from ftauth.sandbox.conf import KNOWN_KEYS as SANDBOX_KEYS
    from ftauth.sandbox.hooks import SandboxHooks

    text = (ROOT / "docs/sandbox.md").read_text()
    assert set(re.findall(r"^\| `([A-Z_]+)` \|", text, re.M)) == SANDBOX_KEYS
    hooks = {name for name in vars(SandboxHooks) if not name.startswith("_")}
    assert hooks  # the hooks are found
    assert {name for name in hooks if f"`{name}(" not in text} == set()


def test_env_example_lists_every_variable_the_demo_reads():
    source = (ROOT / "demo_site/settings.py").read_text()
    read = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", source))
    listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read  # the pattern still matches how settings.py reads the environment
    assert read == listed


def test_env_example_holds_no_secret():
    text = (ROOT / ".env.example").read_text()
    keys = re.findall(r"^# FTAUTH_TOKEN_KEYS=(.*)$", text, re.M)
    assert keys == ["new-fernet-key-here,previous-fernet-key-here"]
    assert not re.search(r"[A-Za-z0-9_-]{43}=", text)  # no real Fernet key


def test_readme_starts_with_the_demo_and_test_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[2] == "```sh"
    assert lines[3].startswith("make demo ")
    assert lines[4].startswith("make test ")
