"""The documentation keeps up with the code: settings, environment, README."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from ftauth.conf import KNOWN_KEYS

ROOT = Path(__file__).resolve().parent.parent


def test_settings_reference_documents_every_ftauth_key():
    documented = set(
        re.findall(r"^\| `([A-Z_]+)` \|", (ROOT / "docs/settings.md").read_text(), re.M)
    )
    assert documented == KNOWN_KEYS


def test_settings_reference_documents_every_check_id():
    sources = "".join(
        (ROOT / "ftauth" / name).read_text() for name in ("checks.py", "core/typed.py")
    )
    used = set(re.findall(r"ftauth\.[EW]\d{3}", sources))
    text = (ROOT / "docs/settings.md").read_text()
    documented = set(re.findall(r"^\| `(ftauth\.[EW]\d{3})` \|", text, re.M))
    assert used and used == documented


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


PIP_INSTALL = re.compile(r"pip install\s+\"?([^\s\"`]+)")
WHEEL = re.compile(r"django_ftauth-[\w.]+-py3-none-any\.whl")
REPOSITORY_EXTRAS = {"test", "bench", "dev"}  # make test's and make bench's, not a site's


def test_every_page_installs_the_one_distribution_with_extras_that_exist():
    """pyproject's name and version, and only extras it has, on every page (issue 16)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    public = set(project["optional-dependencies"]) - REPOSITORY_EXTRAS
    assert public >= {"postgres", "redis", "serve"}
    wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    installs = 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for target in PIP_INSTALL.findall(text):
            installs += 1
            what, _, extras = target.partition("[")
            assert what == name or what.endswith(("/ftauth", "/" + wheel)), (page.name, target)
            assert set(filter(None, extras.rstrip("]").split(","))) <= public, target
        assert set(WHEEL.findall(text)) <= {wheel}, page.name
    assert installs >= 4


def test_readme_installs_from_the_package_index_first():
    readme = (ROOT / "README.md").read_text()
    install = readme.split("## Install in your project", 1)[1]
    assert PIP_INSTALL.search(install)[1] == "django-ftauth"


def test_install_md_makes_the_token_key_once_and_keeps_it(tmp_path):
    """Each shell of docs/install.md runs its ``sh env`` blocks: the key the settings
    read must be the same in every one, or a restart makes every stored token unreadable."""
    import os
    import subprocess
    import sys

    from tests.browser.test_install_docs import blocks

    found = blocks((ROOT / "docs/install.md").read_text())
    exports = "".join(b.text for b in found if "env" in b.tags)
    settings_block = next(b.text for b in found if b.file == "mysite/settings.py")
    # The project's settings.py up to that block: what startproject defines before it.
    read_keys = (
        "import pathlib\n"
        f"namespace = {{'BASE_DIR': pathlib.Path.cwd(), 'INSTALLED_APPS': [], 'MIDDLEWARE': []}}\n"
        f"exec({settings_block!r}, namespace)\n"
        "print(','.join(namespace['FTAUTH']['TOKEN_KEYS']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FT_", "FTAUTH_"))}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"

    def shell() -> str:
        script = f"{exports}\npython -c {shlex.quote(read_keys)}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    from cryptography.fernet import Fernet

    first, second = shell(), shell()
    Fernet(first)  # one well-formed key
    assert first == second
