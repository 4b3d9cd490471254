"""What the README and docs show a user: which commands the README gives (tests/test_readme_commands.py runs them),
the notebook kept without outputs, the presets page naming every preset, and messages that point to the docs."""

from __future__ import annotations

import ast
import json
import re
import shlex

from gankit.config import preset_names

from conftest import REPO

README = REPO / "README.md"


def readme_commands(text: str) -> list[list[str]]:
    """The arguments of each `gankit` line in the README's bash blocks, in order, comments dropped."""
    return [shlex.split(line, comments=True)[1:] for line in bash_lines(text) if line.startswith("gankit ")]


def bash_lines(text: str) -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines()]


def test_the_readme_shows_the_main_commands_each_on_a_line_of_its_own():
    text = README.read_text()
    commands = [args[0] for args in readme_commands(text)]
    assert {"train", "sample", "eval", "serve"} <= set(commands)
    assert commands.index("train") < commands.index("sample")  # each command after the run it uses
    # a command the extraction would miss (behind a prompt, a variable or a pipe) would go untested
    assert [line for line in bash_lines(text) if "gankit " in line and not line.startswith("gankit ")] == []
    assert "```sh" not in text and "```console" not in text


def test_readme_commands_are_read_with_their_quotes_and_without_comments():
    text = '```bash\ngankit train x --data-dir "my photos"   # a comment\npip install y\n```\n'
    assert readme_commands(text) == [["train", "x", "--data-dir", "my photos"]]


def test_the_notebook_is_kept_without_outputs():
    cells = json.loads((REPO / "examples" / "quickstart.ipynb").read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


def test_the_presets_page_names_every_preset():
    page = (REPO / "docs" / "presets.md").read_text()
    assert [name for name in preset_names() if f"`{name}`" not in page] == []


# files a user of an installed package does not have
ABSENT = re.compile(r"BENCHMARKS\.md|bench/|docs/\w+\.md|tests/|src/gankit")


def test_nothing_a_user_sees_points_to_files_an_installed_package_lacks():
    """Preset descriptions and messages name the docs' pages, not files of the repository."""
    presets = sorted((REPO / "src" / "gankit" / "presets").glob("*.yaml"))
    assert presets
    for preset in presets:
        assert not ABSENT.search(preset.read_text()), preset.name
    for module in (REPO / "src" / "gankit").rglob("*.py"):
        pointing = [s for s in message_strings(module.read_text()) if ABSENT.search(s)]
        assert not pointing, (module, pointing)
    assert message_strings('"""doc"""\nx = "see bench/a.py"\n') == ["see bench/a.py"]


def message_strings(source: str) -> list[str]:
    """The string constants of a module that are not docstrings: what it can print or raise."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
