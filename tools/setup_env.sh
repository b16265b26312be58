#!/usr/bin/env bash
# Make .venv a working ROS 2 Kilted environment with lanenet installed in it.
#
#   1. a virtual environment with torch (CPU build, pinned), the ros-kilted-* wheels and
#      the project's dependencies (pip install -e .[train,dev]);
#   2. the wheels' exported CMake files pointed at this venv's Python and numpy headers
#      (they name the directories of the machine the wheels were built on);
#   3. msg/*.msg generated and built with rosidl/ament_cmake and installed into the venv,
#      so that `from lanenet_ros.msg import LaneArray` works;
#   4. the ROS 2 launch system and command line (`ros2 launch`, `ros2 topic`, `ros2 param`,
#      `ros2 lifecycle` ...) from the team's ros2-launch folder, when there is one: PyPI lacks
#      them, a ROS 2 install has them. Found at $LANENET_ROS2_LAUNCH, else ../shared/ros2-launch
#      or ../../shared/ros2-launch beside the checkout (a worktree one level deeper);
#   5. share/lanenet_ros/launch/*.py, share/lanenet_ros/config and lib/lanenet_ros/lanenet_node
#      linked into the venv (like `colcon build --symlink-install`), and AMENT_PREFIX_PATH set
#      by .venv/bin/activate, so that `ros2 launch lanenet_ros lanenet.launch.py` runs this checkout.
#
# Each step runs only when its inputs changed (stamps in .venv/.lanenet-*), so a second
# run takes about a second. Environment: PYTHON (default python3) picks the interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
digest() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$VENV/.lanenet-$1" ] && [ "$(cat "$VENV/.lanenet-$1")" = "$2" ]; }
# pip prints one warning per missing local index directory; keep real messages only.
pip_quiet() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "lanenet needs Python 3.11 (the ROS 2 Kilted wheels are built for it), found " + sys.version.split()[0]' \
    || { echo "[setup] error: set PYTHON to a Python 3.11 interpreter" >&2; exit 1; }
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

deps="$(digest requirements-ros.txt setup.py)"
if ! stamp_ok deps "$deps"; then
  # torch first and pinned: anything that asks for an unpinned torch later is then satisfied
  # by this CPU build instead of downloading a CUDA build.
  say "installing torch==2.13.0, ROS 2 Kilted wheels and lanenet's dependencies"
  pip_quiet torch==2.13.0
  pip_quiet -r requirements-ros.txt
  pip_quiet -e ".[train,dev]" --config-settings editable_mode=compat
  echo "$deps" > "$VENV/.lanenet-deps"
  rm -f "$VENV/.lanenet-cmakefix"
fi

site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pyinc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
npinc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
fix="$(digest "$VENV/.lanenet-deps")-$pyinc-$npinc"
if ! stamp_ok cmakefix "$fix"; then
  say "pointing the wheels' CMake exports at $pyinc and $npinc"
  { grep -rlF --include="*.cmake" "/opt/python/cp311-cp311" "$VENV/share" || true; } | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g" "$f"
  done
  echo "$fix" > "$VENV/.lanenet-cmakefix"
fi

msgs="$(digest msg/*.msg CMakeLists.txt package.xml)-$fix"
if ! stamp_ok msgs "$msgs" || ! "$VENV/bin/python" -c 'from lanenet_ros.msg import LaneArray' 2>/dev/null; then
  say "building lanenet_ros messages into $VENV"
  build="$VENV/build/lanenet_ros"
  rm -rf "$build"; mkdir -p "$build"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  export PATH="$VENV/bin:$PATH" LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cmake -S "$ROOT" -B "$build" -DCMAKE_INSTALL_PREFIX="$VENV" -DLANENET_INSTALL_PYTHON=OFF \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
    && cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 \
    && cmake --install "$build" >>"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; echo "[setup] error: message build failed, full log: $build.log" >&2; exit 1; }
  # The generated package must not shadow the source package: lanenet_ros/__init__.py
  # extends its __path__ to the generated msg/ and type-support modules instead.
  rm -f "$site/lanenet_ros/__init__.py"
  "$VENV/bin/python" -c 'from lanenet_ros.msg import Lane, LaneArray' \
    || { echo "[setup] error: messages built but 'from lanenet_ros.msg import LaneArray' fails" >&2; exit 1; }
  echo "$msgs" > "$VENV/.lanenet-msgs"
fi
ros2_launch="${LANENET_ROS2_LAUNCH:-}"
if [ -z "$ros2_launch" ]; then
  for dir in "$ROOT/../shared/ros2-launch" "$ROOT/../../shared/ros2-launch"; do
    if [ -f "$dir/install.sh" ]; then ros2_launch="$(cd "$dir" && pwd)"; break; fi
  done
elif [ ! -f "$ros2_launch/install.sh" ]; then
  echo "[setup] error: LANENET_ROS2_LAUNCH=$ros2_launch has no install.sh" >&2; exit 1
fi
if [ -n "$ros2_launch" ]; then
  launch_inputs="$( (cd "$ros2_launch" && cat install.sh && ls -R wheels composition_interfaces) | sha256sum | cut -c1-16)"
  if ! stamp_ok ros2launch "$launch_inputs" || [ ! -x "$VENV/bin/ros2" ]; then
    say "installing the ROS 2 launch system and command line from $ros2_launch"
    bash "$ros2_launch/install.sh" "$VENV" >/dev/null
    echo "$launch_inputs" > "$VENV/.lanenet-ros2launch"
  fi
fi

# Launch files, config and the node's executable where `ros2 launch` / FindPackageShare look for
# them, as links into this checkout (edits apply at once). Launch files are linked one by one:
# ros2 launch searches the share directory without following directory links.
share="$VENV/share/lanenet_ros"
linked=0
link() {  # link TARGET NAME: make NAME a link to TARGET unless it already is one
  if [ "$(readlink "$2" 2>/dev/null)" != "$1" ]; then
    rm -rf "$2"; mkdir -p "$(dirname "$2")"; ln -s "$1" "$2"; linked=1
  fi
}
link "$ROOT/config" "$share/config"
for file in "$ROOT"/launch/*.py; do link "$file" "$share/launch/$(basename "$file")"; done
link "$VENV/bin/lanenet-node" "$VENV/lib/lanenet_ros/lanenet_node"
marker="# lanenet (tools/setup_env.sh): ros2 and ament find the packages installed in this venv"
if ! grep -qF "$marker" "$VENV/bin/activate"; then
  printf '\n%s\nexport AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"\n' "$marker" \
    >> "$VENV/bin/activate"
  linked=1
fi
[ "$linked" = 0 ] || say "linked launch/, config/ and lanenet_node into $share (ros2 launch lanenet_ros ...)"
# The frame path's compiled kernels (numba, lanenet_ros/jit.py): compiled once into numba's cache so that no
# node, test or command waits for the compiler later (about 30 s the first time, a second once cached; it says
# so only when it compiled).
"$VENV/bin/python" - <<'PY' || { echo "[setup] error: compiling the decoder's kernels failed (see above)" >&2; exit 1; }
import time
start = time.perf_counter()
import lanenet_ros.pipeline  # noqa: F401  (every module with kernels)
from lanenet_ros.jit import warm_up
if warm_up():
    print(f"[setup] compiled the decoder's kernels ({time.perf_counter() - start:.0f} s)")
PY
say "ready: $VENV (activate with: source .venv/bin/activate)"
