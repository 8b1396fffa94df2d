"""Issue 19 item 2: the SMSC simulator is a test/demo tool, not production code. No production
module imports it, lazily or not: only tests, benches, the simulator's own modules and management
commands (`smsc_simulator`, which `devstack` starts as a process) may (R-DLV-3)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("smsplatform", "tenants", "compliance", "billing", "delivery")
SIMULATOR = "delivery.simulator"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top level and inside functions), relative imports resolved;
    `from a import b` counts as importing a and a.b; a string handed to importlib counts too."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and any(
            isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args
        ):
            found.update(arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return found


def _is_simulator(module: str) -> bool:
    return module == SIMULATOR or module.startswith(SIMULATOR + ".")


def _production_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" in rel or "/management/commands/" in rel:
                continue
            if _is_simulator(_module_name(path)):
                continue  # the simulator's own modules
            yield path


def test_no_production_module_imports_the_simulator_r_dlv_3():
    files = list(_production_files())
    assert len(files) > 100  # the walk really covers the apps
    offenders = {
        _module_name(path): sorted(m for m in _imports(path) if _is_simulator(m))
        for path in files
        if any(_is_simulator(m) for m in _imports(path))
    }
    assert offenders == {}


def test_the_walk_sees_the_commands_that_start_the_simulator():
    """The check is not vacuous: the management command that runs the simulator is found importing
    it (and is allowed to)."""
    command = ROOT / "delivery" / "management" / "commands" / "smsc_simulator.py"
    assert any(_is_simulator(m) for m in _imports(command))
