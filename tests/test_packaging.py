"""The project's set-up files agree with each other."""
import re

try:
    import tomllib
except ModuleNotFoundError:                     # Python 3.10: pip carries the same parser
    from pip._vendor import tomli as tomllib
from conftest import ROOT

import pydist


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _conda_deps():
    text = (ROOT / "environment.yml").read_text()
    return {m[0]: m[1] for m in re.findall(r"^\s+- ([A-Za-z0-9_.-]+)([<>=!~][^\s#]*)?", text,
                                           re.M)}


def _requirements(specs):
    return {re.split(r"[<>=!~\[]", s)[0].lower(): s[len(re.split(r"[<>=!~\[]", s)[0]):]
            for s in specs}


def test_environment_yml_has_every_runtime_test_and_lab_dependency():
    project = _pyproject()["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["test"]
                           + project["optional-dependencies"]["lab"])
    conda = _conda_deps()
    missing = {name: spec for name, spec in wanted.items() if conda.get(name) != spec}
    assert not missing, f"environment.yml lacks (or pins differently): {missing}"
    assert conda["python"] == _pyproject()["project"]["requires-python"]
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_the_public_names_are_those_of_the_rosetta_table():
    for name in ["Node", "Process", "rpc", "peer", "spawn", "send", "receive", "flush", "self",
                 "pid_to_list", "BadRpc"]:
        assert name in pydist.__all__ and hasattr(pydist, name)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py test" in readme and "python3 course.py lab" in readme
    assert "python3 course.py test" in (ROOT / ".ci" / "run").read_text()


def test_course_py_explains_itself():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(ROOT / "course.py")], capture_output=True,
                       text=True, check=False, timeout=30)
    assert r.returncode == 2 and "python3 course.py test" in r.stdout


def test_the_console_script_is_declared():
    assert _pyproject()["project"]["scripts"]["pydist"] == "pydist.__main__:main"


def _notebooks():
    import json
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        yield path, json.loads(path.read_text())["cells"]


def test_every_notebook_links_to_files_that_exist():
    for path, cells in _notebooks():
        for cell in cells:
            if cell["cell_type"] == "markdown":
                for link in re.findall(r"\]\(([^)#]+)\)", "".join(cell["source"])):
                    if not link.startswith("http"):
                        assert (path.parent / link).exists(), f"{path.name}: broken link {link}"


def test_every_notebook_is_stored_with_outputs_stops_its_nodes_and_ends_with_your_turn():
    for path, cells in _notebooks():
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code), f"{path.name} has cells never run"
        assert "Node.stop()" in "".join(code[-2]["source"]), f"{path.name}: clean-up cell"
        assert f"pydist check {path.name[:2]}" in "".join(code[-1]["source"]), \
            f"{path.name}: the last cell checks the notebook's exercise"
        assert "exercises/ex" in "".join(cells[-1]["source"]), f"{path.name}: exercise link"


# Files the repository may track although they pass 1 MiB: none yet. A new entry says why.
LARGE_FILES_ALLOWED: dict[str, str] = {}


def test_the_repository_tracks_no_environment_build_output_or_large_file():
    import subprocess
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout.decode().split("\0")
    tracked = [p for p in tracked if p]
    environment = re.compile(r"(^|/)(\.?venv[^/]*|env|site-packages|__pycache__|node_modules"
                             r"|build|dist|[^/]*\.egg-info|\.ipynb_checkpoints|\.pytest_cache)/")
    built = re.compile(r"\.(pyc|pyo|so|o|whl|egg)$")
    wrong = [p for p in tracked if environment.search(p) or built.search(p)]
    assert not wrong, (f"the repository tracks {len(wrong)} files of an environment or build "
                       f"output, e.g. {wrong[:3]}: `git rm -r --cached` them (.gitignore has them)")
    large = [p for p in tracked if (ROOT / p).is_file()
             and (ROOT / p).stat().st_size > 1 << 20 and p not in LARGE_FILES_ALLOWED]
    assert not large, f"files over 1 MiB with no reason given in LARGE_FILES_ALLOWED: {large}"
