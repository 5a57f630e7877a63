"""The project's own promises: the README's commands, CI running the same test command, layout."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_opens_with_two_commands():
    commands = _readme_commands()
    assert len(commands) >= 2
    assert "pydeeplab segment" in commands[0]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_kernels_installed_inside_the_package_only():
    code = "import importlib.util as u, pydeeplab.kernels; print(u.find_spec('kernels') is None)"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_test_tools_are_not_runtime_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    runtime = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    for name in ("pytest", "hypothesis", "litert"):
        assert name not in runtime


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import statement in a Python file (level > 0: relative)."""
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.append((node.module or "", node.level))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, 0) for alias in node.names)
    return out


def test_kernels_do_not_import_the_package_above_them():
    """kernels/ is the bottom layer (installed as pydeeplab.kernels): numba, numpy and its own modules."""
    for path in sorted((ROOT / "kernels").glob("*.py")):
        for module, level in _imports(path):
            assert level <= 1, f"{path.name} imports from the package above kernels/ ({'.' * level}{module})"
            assert not module.startswith("pydeeplab"), f"{path.name} imports {module}"


def test_runtime_package_holds_no_tools():
    """Benchmark and conformance harnesses live in tools/, not in the installed package."""
    names = {p.stem for p in (ROOT / "pydeeplab").glob("*.py")}
    assert not names & {"bench", "sweep", "fuzz", "figures", "synth"}
