"""Can Qt open a window here? Checked in a child process before the app creates its QApplication.

When Qt cannot load its platform plugin it aborts the whole process with "Could not load the Qt
platform plugin "xcb"", which tells a user nothing about what to install. So ``facescope gui``
first creates a QGuiApplication in a child Python (about 0.3 s); if that fails it finds out why:
the shared libraries the plugin lacks (``ldd`` of the plugin, and the loader's own error from
``QT_DEBUG_PLUGINS``), mapped to Debian/Ubuntu package names, or no display to connect to.

Pure functions on text (``missing_libraries``, ``packages_for``, ``explain``) keep the diagnosis
testable; ``platform_problem()`` runs the real child.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The runtime libraries of Qt 6's xcb platform plugin (Qt docs, "Qt for X11 Requirements"), as
# Debian/Ubuntu package names keyed by the shared object the plugin links.
XCB_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}
# What README and the error message tell a user of a bare Debian/Ubuntu desktop to install.
XCB_INSTALL = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0", "libxcb-xinerama0",
               "libxcb-randr0", "libxcb-render-util0", "libxcb-image0", "libxcb-shape0", "libegl1", "libgl1",
               "libfontconfig1", "libdbus-1-3")

_PROBE = ("import sys\n"
          "from PySide6.QtGui import QGuiApplication\n"
          "app = QGuiApplication(['facescope'])\n"
          "print('platform:', app.platformName())\n")
_NOT_FOUND = re.compile(r"([\w.+-]+\.so[.\d]*)(?: => not found|: cannot open shared object file)")


def missing_libraries(text: str) -> list[str]:
    """Shared objects reported missing in ``ldd`` output or a loader error, in order, once each."""
    seen: dict[str, None] = {}
    for name in _NOT_FOUND.findall(text):
        seen.setdefault(Path(name).name, None)
    return list(seen)


def packages_for(libraries: list[str]) -> list[str]:
    """Debian/Ubuntu packages for these shared objects (unknown ones are left out)."""
    return list(dict.fromkeys(XCB_PACKAGES[lib] for lib in libraries if lib in XCB_PACKAGES))


def plugin_path(platform: str) -> Path | None:
    """The platform plugin's library inside the installed PySide6 (found without importing Qt)."""
    spec = importlib.util.find_spec("PySide6")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
        if path.is_file():
            return path
    return None


def requested_platform(env: dict[str, str] | os._Environ = os.environ) -> str:
    """The platform plugin Qt will try first (QT_QPA_PLATFORM, else wayland or xcb as Qt picks)."""
    wanted = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if wanted:
        return wanted
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def explain(platform: str, child_output: str, ldd_output: str, env: dict[str, str] | os._Environ = os.environ) -> str:
    """The user-facing message for a platform plugin that did not start (lines, no traceback)."""
    libs = missing_libraries(ldd_output) or missing_libraries(child_output)
    if libs:
        wanted = packages_for(libs)
        rest = [p for p in XCB_INSTALL if p not in wanted] if platform == "xcb" else []
        unknown = [lib for lib in libs if lib not in XCB_PACKAGES]
        return (f"facescope: error: Qt cannot load its '{platform}' platform plugin (the window's link to the "
                f"desktop): missing system libraries {', '.join(libs)}.\n"
                f"Install them (Debian/Ubuntu): sudo apt-get install {' '.join(wanted + rest)}"
                + (f"\n(and the packages that provide {', '.join(unknown)})" if unknown else ""))
    if "could not connect to display" in child_output or (platform == "xcb" and not env.get("DISPLAY")):
        where = f"DISPLAY={env['DISPLAY']}" if env.get("DISPLAY") else "DISPLAY is not set"
        return (f"facescope: error: no display to open the window on ({where}, no X server answered).\n"
                f"Run it in a desktop session, or without a display: `facescope demo` (headless, writes a "
                f"video) or QT_QPA_PLATFORM=offscreen facescope gui (nothing shown)")
    qt_lines = [ln for ln in child_output.splitlines() if ln.startswith(("qt.qpa", "This application", "Could not"))]
    detail = "\n".join(qt_lines[-4:]) or child_output.strip()[-600:]
    return (f"facescope: error: Qt could not start its '{platform}' platform plugin:\n{detail}\n"
            f"On Debian/Ubuntu the xcb plugin needs: sudo apt-get install {' '.join(XCB_INSTALL)}")


def platform_problem(timeout: float = 60.0) -> str | None:
    """None when a QGuiApplication starts in a child process with this environment, else the message
    saying why not and what to install."""
    env = dict(os.environ, QT_DEBUG_PLUGINS="1")
    try:
        child = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                               timeout=timeout)
    except subprocess.TimeoutExpired:
        return (f"facescope: error: Qt did not start its platform plugin within {timeout:.0f} s "
                f"(a display that does not answer?)")
    if child.returncode == 0 and "platform:" in child.stdout:
        return None
    platform = requested_platform()
    plugin = plugin_path(platform)
    ldd_output = ""
    if plugin is not None and shutil.which("ldd"):
        ldd_output = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=30).stdout
    return explain(platform, child.stderr + child.stdout, ldd_output)
