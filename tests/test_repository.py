"""What a user's clone must hold true: shipped files carry no machine's paths, nothing links outside the
repository, the README stays a page a newcomer reads, the documented layout names every module, and every results
command is followed by what it printed."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".json", ".toml", ".txt", ".sh", ".cfg", ".yaml", ".yml"}
SKIP = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache"}
README_MAX_LINES = 150


def _project_text_files():
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and path.suffix in TEXT_SUFFIXES and not parts & SKIP and not any(
                p.endswith(".egg-info") for p in parts):
            yield path


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_shipped_files_carry_no_local_paths():
    absolute = re.compile(r"^(/|[A-Za-z]:\\)")
    found = []
    for path in sorted((ROOT / "model" / "shipped").rglob("*.json")):
        found += [f"{path.relative_to(ROOT)}: {s}" for s in _strings(json.loads(path.read_text())) if absolute.match(s)]
    assert not found, "absolute paths of the machine that trained the model:\n" + "\n".join(found)


def test_nothing_links_outside_the_repository():
    outside = "../" + "shared"  # split so this file does not match itself
    found = [str(p.relative_to(ROOT)) for p in _project_text_files() if outside in p.read_text(errors="ignore")]
    assert not found, f"files that point outside the repository (a user's clone has no {outside}/): {found}"


def test_readme_is_a_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move details to docs/"
    links = re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", "\n".join(lines))
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_committed_agents_report_has_the_bench_fields_and_the_readme_quotes_it():
    """docs/agents.json is a copy of the final `lv2 bench agents` report; README's agents sentence says its figures."""
    report = json.loads((ROOT / "docs" / "agents.json").read_text())
    for key in ("split", "scenes", "transfer_ratio", "spearman", "pearson", "mean_abs_gap", "policies", "levels"):
        assert key in report, key
    assert report["split"] == "agent_test" and len(report["scenes"]) == 60
    for policy in report["policies"]:
        assert {"name", "trained_in", "env_steps", "success_truth", "success_world"} <= set(policy)
    truth = next(p for p in report["policies"] if p["name"] == "truth-trained")
    readme = (ROOT / "README.md").read_text()
    assert f"{truth['success_truth']:.2f}" in readme
    assert "lv2 bench agents" in (ROOT / "docs" / "agents.md").read_text()


# --- The tree a newcomer reads ---------------------------------------------------------------------------------------

PACKAGES = ("model", "lv2_env", "agents")
MAX_MODULE_LINES = 500  # a module longer than this holds more than one concept: split it (docs/architecture.md)
LAYOUT_ENTRY = re.compile(r"^(?:[\w.]+\.py(?:, [\w.]+\.py)*|\w+/)$")


def _package_modules() -> list[str]:
    return sorted(path.relative_to(ROOT).as_posix() for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if path.name not in {"__init__.py", "__main__.py"} and "__pycache__" not in path.parts)


def _layout_modules(text: str) -> set[str]:
    """The module paths named by the tree in docs/environment.md's Layout section: two spaces of indent per folder
    level, each entry ``name/`` or ``a.py`` (or ``a.py, b.py``) before its description; deeper lines continue a
    description."""
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    folders: list[str] = []
    named = set()
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        entry = re.split(r"\s{2,}", line.strip())[0]
        if depth > len(folders) or not LAYOUT_ENTRY.match(entry):
            continue  # a description's continuation
        del folders[depth:]
        if entry.endswith("/"):
            folders.append(entry[:-1])
        else:
            named.update("/".join([*folders, name]) for name in entry.split(", ")
                         if name not in {"__init__.py", "__main__.py"})
    return named


def test_no_package_module_is_longer_than_its_limit():
    long = {path: n for path in _package_modules() if (n := len((ROOT / path).read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {long}"


def test_the_documented_layout_names_every_module():
    named = _layout_modules((ROOT / "docs" / "environment.md").read_text())
    modules = set(_package_modules())
    assert not modules - named, f"modules docs/environment.md's Layout does not list: {sorted(modules - named)}"
    assert not named - modules, f"docs/environment.md's Layout lists modules that do not exist: {sorted(named - modules)}"


COMMAND_LINE = re.compile(r"^(lv2 |python |bash |OMP_NUM_THREADS=|CI=)")


def _commands_without_output(text: str) -> list[str]:
    """The command blocks of a results page (fenced blocks holding an ``lv2``/``python`` command) not followed, before
    the next heading or the next command, by what they printed: a Markdown table or a fenced block of output."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            blocks.append((i, end, any(COMMAND_LINE.match(line.strip()) for line in lines[i + 1:end])))
            i = end + 1
        else:
            i += 1
    missing = []
    for k, (start, end, is_command) in enumerate(blocks):
        if not is_command:
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        stop = following[0] if following else len(lines)
        after = lines[end + 1:stop]
        heading = next((n for n, line in enumerate(after) if line.startswith("#")), None)
        after = after if heading is None else after[:heading]
        output_block = following is not None and not following[2] and heading is None
        if not output_block and not any(line.startswith("|") for line in after):
            missing.append(f"line {start + 2}: {lines[start + 1].strip()[:90]}")
    return missing


def test_every_results_command_is_followed_by_what_it_printed():
    missing = _commands_without_output((ROOT / "docs" / "results.md").read_text())
    assert not missing, "docs/results.md commands with no table or output after them:\n" + "\n".join(missing)
