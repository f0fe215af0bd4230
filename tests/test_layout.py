"""The library's shape: modules of one concern, short enough to read, with imports that run one way."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fvae_lib"

# Lower layers never import higher ones: a module may import its own layer or those below it.
LAYERS = [
    {"device", "paths", "storage", "gaussians", "threads", "results", "display"},  # no fvae_lib imports at all, or only each other
    {"data", "models", "objectives"},  # datasets, networks, loss terms
    {"algorithm", "encoding", "config"},  # one iteration; encoding a dataset; what defines a run
    {"decomposition", "density_ratio", "metrics", "runs", "modes", "reference"},  # estimators, scores; run folders; modes; the shipped sweep
    {"train", "plots", "explorer", "sweep_plots", "diagrams", "environment"},  # the training loop; figures; the setup report
    {"evaluate", "trajectory", "exercises", "release", "plan"},  # scoring a run; exercise checkers; assignments; the training plan
    {"sweep", "sweep_task"},  # a grid of runs: its spec, one run's task
    {"sweep_table", "engine_local", "engine_submitit", "export"},  # a sweep's table; the two engines; decoders as ONNX
    {"engines"},  # where a sweep's runs execute: the driver
    {"notebook", "book", "book_pages", "__main__", "__init__"},  # what users call: notebooks' helpers, the rendered book, the CLI
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield rel, path


def top_module(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_modules(path: Path, rel: Path) -> set[str]:
    """The fvae_lib top-level modules this file imports (relative or absolute)."""
    found = set()
    depth_of_package = len(rel.parts) - 1  # 0 for fvae_lib/x.py, 1 for fvae_lib/data/x.py
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("fvae_lib"):
                parts = node.module.split(".")[1:]
            elif node.level > depth_of_package:  # reaches fvae_lib itself, or a sibling of this subpackage
                parts = (node.module or "").split(".") if node.module else [a.name for a in node.names]
            else:
                continue
            if parts and parts[0]:
                found.add(parts[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("fvae_lib.")}
    return found


def test_every_module_has_a_layer():
    assert {top_module(rel) for rel, _ in modules()} <= set(LAYER_OF), {top_module(r) for r, _ in modules()} - set(LAYER_OF)


@pytest.mark.parametrize("rel,path", list(modules()), ids=lambda v: str(v) if isinstance(v, Path) and not v.is_absolute() else "")
def test_imports_run_one_way_and_modules_stay_readable(rel, path):
    me = top_module(rel)
    upward = {m for m in imported_modules(path, rel) - {me} if m in LAYER_OF and LAYER_OF[m] > LAYER_OF[me]}
    assert not upward, f"{rel} (layer {LAYER_OF[me]}) imports higher layers: {sorted(upward)}"
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{rel} has {lines} lines; split it by concern"


def readme_layout_lines() -> dict[str, int]:
    """{module: its line in the README's layout block}, for every module the block names."""
    import re

    text = (PACKAGE.parent / "README.md").read_text()
    block = text[text.index("## Layout"):]
    block = block[block.index("```") + 3:]
    block = block[: block.index("```")]
    lines, found = [], {}
    for line in block.splitlines():
        if line.startswith("notebooks/"):
            break
        lines.append(line.replace("fvae_lib/", " "))
    for i, line in enumerate(lines):  # modules are written name.py, subpackages name/ (...)
        for name in re.findall(r"\b(\w+)(?:\.py\b|/ \()", line):
            found.setdefault(name, i)
    return found


def test_the_readme_layout_names_every_module_on_a_line_no_lower_than_its_imports():
    """The README says each line imports only from its own line and those above it: check it against the code."""
    where = readme_layout_lines()
    missing = {top_module(rel) for rel, _ in modules()} - set(where) - {"__init__"}
    assert not missing, f"the README's layout does not name {sorted(missing)}"
    for rel, path in modules():
        me = top_module(rel)
        if me not in where:
            continue
        above = {m for m in imported_modules(path, rel) - {me} if m in where and where[m] > where[me]}
        assert not above, f"{rel} (README line {where[me]}) imports modules the README lists below it: {sorted(above)}"


def test_every_module_has_its_own_test_file():
    """The README's promise: tests/test_<module>.py for each module and subpackage (test_cli for __main__)."""
    tests = PACKAGE.parent / "tests"
    wanted = {top_module(rel) for rel, _ in modules()} - {"__init__"}
    missing = sorted(m for m in wanted if not (tests / f"test_{'cli' if m == '__main__' else m}.py").exists())
    assert not missing, f"modules without a test file of their own: {missing}"
