"""The ROS 2 package itself: package.xml, the .venv set-up, and a colcon build in a fresh workspace."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)

# REP 149 (package format 3): the order of the top-level elements and how often each may appear.
FORMAT3_SEQUENCE = [
    ("name", 1, 1), ("version", 1, 1), ("description", 1, 1), ("maintainer", 1, None), ("license", 1, None),
    ("url", 0, None), ("author", 0, None),
    ({"build_depend", "build_export_depend", "buildtool_depend", "buildtool_export_depend", "exec_depend",
      "depend", "doc_depend", "test_depend", "conflict", "replace"}, 0, None),
    ("group_depend", 0, None), ("member_of_group", 0, None), ("export", 0, 1),
]


def check_format3(path: Path) -> list[str]:
    """Problems found in a package.xml against REP 149's format-3 rules (empty when valid)."""
    root = etree.parse(str(path)).getroot()
    problems = [] if root.tag == "package" and root.get("format") == "3" else ["root must be <package format=\"3\">"]
    tags = [child.tag for child in root if isinstance(child.tag, str)]
    pos = 0
    for allowed, low, high in FORMAT3_SEQUENCE:
        names = allowed if isinstance(allowed, set) else {allowed}
        count = 0
        while pos < len(tags) and tags[pos] in names:
            pos, count = pos + 1, count + 1
        if count < low or (high is not None and count > high):
            problems.append(f"<{'|'.join(sorted(names))}> appears {count} times at its place in the sequence")
    problems += [f"unexpected or misplaced <{tag}>" for tag in tags[pos:]]
    name = root.findtext("name", "")
    if not re.fullmatch(r"[a-z](_?[a-z0-9]+)*", name):
        problems.append(f"package name {name!r} is not a valid ROS package name")
    for person in root.iter("maintainer"):
        if not person.get("email"):
            problems.append("<maintainer> needs an email attribute")
    return problems


def test_package_xml_is_valid_format3():
    assert check_format3(ROOT / "package.xml") == []
    from catkin_pkg.package import parse_package

    package = parse_package(str(ROOT / "package.xml"))  # validates dependencies and fields
    assert package.name == "lanenet_ros" and package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [group.name for group in package.member_of_groups]


def test_format3_check_catches_misordered_and_missing_elements(tmp_path):
    bad = tmp_path / "package.xml"
    bad.write_text('<package format="3"><version>1.0.0</version><name>Bad__Name</name>'
                   "<description>d</description><license>MIT</license></package>")
    problems = "\n".join(check_format3(bad))
    assert "<name>" in problems and "<maintainer>" in problems and "Bad__Name" in problems


def test_setup_is_idempotent():
    def setup() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(ROOT / "tools/setup_env.sh")], capture_output=True, text=True,
                              check=True, timeout=900)

    setup()  # converge first: a file this test run edited may call for a rebuild
    stamps = {p: p.stat().st_mtime_ns for p in VENV.glob(".lanenet-*")}
    result = setup()
    assert {p: p.stat().st_mtime_ns for p in VENV.glob(".lanenet-*")} == stamps
    lines = [line for line in result.stdout.splitlines() if line.startswith("[setup]")]
    assert len(lines) == 1 and lines[0].startswith("[setup] ready"), result.stdout


@pytest.mark.slow
def test_colcon_build_in_a_fresh_workspace(tmp_path):
    src = tmp_path / "ws" / "src" / "lanenet_ros"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "install", "log", "__pycache__", "*.egg-info", "data", "results", ".agents"))
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV),
               PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    build = subprocess.run(
        [str(VENV / "bin" / "colcon"), "build", "--event-handlers", "console_direct-",
         "--cmake-args", f"-DPython3_EXECUTABLE={VENV / 'bin' / 'python'}", "-DBUILD_TESTING=OFF"],
        cwd=tmp_path / "ws", env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    install = tmp_path / "ws" / "install" / "lanenet_ros"
    share = install / "share" / "lanenet_ros"
    for path in ("package.xml", "launch/lanenet.launch.py", "config/lanenet.yaml", "msg/LaneArray.msg"):
        assert (share / path).is_file(), path
    assert os.access(install / "lib" / "lanenet_ros" / "lanenet_node", os.X_OK)
    site = install / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    probe = ("import lanenet_ros, lanenet_ros.lanes; from lanenet_ros.msg import Lane, LaneArray; "
             "print(lanenet_ros.__file__); print(LaneArray(lanes=[Lane()]).lanes[0].position)")
    run_env = dict(env, PYTHONPATH=str(site), LD_LIBRARY_PATH=f"{install / 'lib'}:{VENV / 'lib'}")
    out = subprocess.run([sys.executable, "-c", probe], env=run_env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(site / "lanenet_ros" / "__init__.py"), "0"]
