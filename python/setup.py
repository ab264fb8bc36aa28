"""Builds the computenet package with the project's own CMake.

    pip install --no-build-isolation ./python

(from the repository root; scripts/setup.sh installs what it needs). The
C++ part, computenet._core, is the CMake target computenet_python_core
built against the consumer SDK in this repository; setuptools only copies
the result into the wheel. No network is used. Set COMPUTENET_BUILD_DIR to
reuse a configured build directory (default: python/build/cmake).
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not (ROOT / "CMakeLists.txt").is_file() or not (
                ROOT / "consumer-sdk").is_dir():
            raise RuntimeError(
                f"{ROOT} is not a ComputeNet checkout: build from the "
                "repository (pip install ./python), not from a copy of python/")
        build_dir = Path(os.environ.get("COMPUTENET_BUILD_DIR",
                                        HERE / "build" / "cmake"))
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir),
                     "-DCMAKE_BUILD_TYPE=Release",
                     f"-DPython_EXECUTABLE={sys.executable}",
                     "-DCOMPUTENET_BUILD_BENCH=OFF"]
        if subprocess.run(["ninja", "--version"], capture_output=True,
                          check=False).returncode == 0:
            configure += ["-G", "Ninja"]
        if not (build_dir / "CMakeCache.txt").exists():
            subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target",
                        "computenet_python", "--parallel",
                        str(os.cpu_count() or 2)], check=True)
        built = build_dir / "python" / "computenet"
        modules = sorted(built.glob("_core*.so"))
        if not modules:
            raise RuntimeError(f"CMake built no _core module in {built}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.copy_file(str(modules[-1]), str(target))


setup(
    name="computenet",
    version="0.1.0",
    description="ComputeNet's Python SDK, on the C++ consumer SDK",
    python_requires=">=3.9",
    packages=["computenet"],
    package_data={"computenet": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("computenet._core")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
