"""Builds the wheel of `pip install .`: CMake builds the extension gaze._C and the `gaze` command
(in build/pip; $GAZE_BUILD_DIR names a build folder to use instead, packed as it is once built), `cmake --install
--component python` lays out the package (see cmake/install.cmake), and setuptools packs it. Every
compiled file finds libgaze.so.0 inside the package, so the wheel needs nothing of the source tree."""
import os
import pathlib
import re
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


def version():
    return re.search(r"project\(gaze VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


class CMakeBuild(build_ext):
    def run(self):
        given = os.environ.get("GAZE_BUILD_DIR")
        build = pathlib.Path(given or ROOT / "build" / "pip").resolve()
        built = (build / "gaze").exists() and list((build / "python" / "gaze").glob("_C*.so"))
        # A build folder named by GAZE_BUILD_DIR that is already built is packed as it is: building
        # again could relink binaries other processes (a test run) are using.
        if not (given and built):
            if not (build / "CMakeCache.txt").exists():
                subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                                "-DGAZE_BUILD_TESTS=OFF", "-DGAZE_BUILD_BENCH=OFF"], check=True)
            subprocess.run(["cmake", "--build", str(build), "--target", "gaze_python", "gaze_cli"],
                           check=True)
        stage = pathlib.Path(self.build_temp).resolve() / "stage"
        shutil.rmtree(stage, ignore_errors=True)
        subprocess.run(["cmake", "--install", str(build), "--component", "python", "--prefix", str(stage)],
                       check=True, stdout=subprocess.DEVNULL)
        # A wheel holds files, not symlinks: keep the library under its SONAME only.
        lib = stage / "gaze" / "lib"
        real = next(p for p in lib.iterdir() if not p.is_symlink())
        (lib / "libgaze.so.0").unlink()
        real.rename(lib / "libgaze.so.0")
        target = pathlib.Path(self.build_lib).resolve() / "gaze"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(stage / "gaze", target)


# setuptools' own build and egg-info folders, away from CMake's build/ and from python/.
SETUPTOOLS_DIR = ROOT / "build" / "setuptools"
SETUPTOOLS_DIR.mkdir(parents=True, exist_ok=True)

setup(
    version=version(),
    options={"build": {"build_base": str(SETUPTOOLS_DIR)}, "egg_info": {"egg_base": str(SETUPTOOLS_DIR)}},
    packages=["gaze", "gaze.nn", "gaze.optim"],
    package_dir={"": "python"},
    # The real extension is built by CMake; this entry makes setuptools call build_ext and tag the
    # wheel for this platform and interpreter.
    ext_modules=[Extension("gaze._C", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
