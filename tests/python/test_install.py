"""gaze as an installed library: `cmake --install` into a temporary prefix gives libgaze.so, public
headers that need nothing private, the `gaze` command, a CMake package and gaze.pc; the example
program of examples/cpp builds against it both ways and predicts with a trained model; the Debian
package holds the same and its dependencies resolve; the version is printed and recorded."""
import json
import os
import shutil
import struct
import subprocess

import pytest

from cli_helpers import BUILD, ROOT, run, sentiment_rows, write_config, write_tsv

EXAMPLE = ROOT / "examples" / "cpp"


def sh(*args, env=None, cwd=None, timeout=600, stdin=None):
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=timeout, input=stdin)
    assert res.returncode == 0, f"{' '.join(map(str, args))}: exit {res.returncode}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    sh("cmake", "--install", BUILD, "--prefix", p)
    return p


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    rows = sentiment_rows()
    cfg = write_config(d / "run.yaml", write_tsv(d / "train.tsv", rows[:300]), write_tsv(d / "dev.tsv", rows[300:360]),
                       d / "run", train={"epochs": 1})
    run("train", cfg, check=0)
    return d / "run"


def clean_env():
    """No trace of the build tree: the installed files must stand on their own."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "GAZE_BUILD_DIR")}
    env["PATH"] = "/usr/bin:/bin"
    return env


def test_the_prefix_holds_library_headers_command_and_packages(prefix):
    lib = prefix / "lib"
    assert (lib / "libgaze.so").exists() and (lib / "cmake" / "gaze" / "gazeConfig.cmake").exists()
    assert (lib / "pkgconfig" / "gaze.pc").exists()
    assert (prefix / "include" / "gaze" / "tasks" / "task.h").exists()
    # Headers that include private dependencies (Highway, oneDNN) stay inside the library.
    assert not list((prefix / "include").rglob("*-inl.h"))
    assert not (prefix / "include" / "gaze" / "kernels" / "onednn_matmul.h").exists()
    out = sh(prefix / "bin" / "gaze", "--version", env=clean_env()).stdout
    assert out.startswith("gaze ") and "commit" in out
    assert "libgaze.so.0 => " + str(prefix / "bin" / ".." / "lib") in sh("ldd", prefix / "bin" / "gaze").stdout


def pkg_config(prefix, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    return sh("pkg-config", *args, "gaze", env=env).stdout.split()


def test_every_public_header_compiles_with_only_the_package_flags(prefix, tmp_path):
    headers = sorted(p.relative_to(prefix / "include") for p in (prefix / "include" / "gaze").rglob("*.h"))
    assert len(headers) > 100
    src = tmp_path / "all.cpp"
    src.write_text("".join(f"#include <{h}>\n" for h in headers) + "int main() {}\n")
    sh("c++", "-fsyntax-only", src, *pkg_config(prefix, "--cflags"))


def test_the_example_builds_with_cmake_and_predicts(prefix, model, tmp_path):
    build = tmp_path / "build"
    sh("cmake", "-S", EXAMPLE, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}")
    sh("cmake", "--build", build)
    out = sh(build / "predict", model, stdin="What a great phone!\nTerrible.\n", env=clean_env()).stdout
    got = [json.loads(line) for line in out.splitlines()]
    want = [json.loads(line) for line in run("predict", "--model", model, stdin="What a great phone!\nTerrible.\n",
                                             check=0).stdout.splitlines()]
    assert got == want


def test_the_example_builds_with_pkg_config(prefix, model, tmp_path):
    exe = tmp_path / "predict"
    sh("c++", EXAMPLE / "predict.cpp", "-o", exe, *pkg_config(prefix, "--cflags", "--libs"))
    out = sh(exe, model, stdin="Not good.\n", env=clean_env()).stdout
    assert set(json.loads(out)) == {"label", "score"}
    res = subprocess.run([str(exe)], capture_output=True, text=True)
    assert res.returncode == 2 and "usage:" in res.stderr


@pytest.mark.skipif(shutil.which("cpack") is None or shutil.which("dpkg-shlibdeps") is None,
                    reason="cpack or dpkg-shlibdeps (dpkg-dev) missing")
def test_the_debian_package_holds_everything_and_its_dependencies_resolve(tmp_path):
    # `make deb` packs the build; here into a folder of the test's own.
    sh("cpack", "-G", "DEB", "-B", tmp_path, "--config", BUILD / "CPackConfig.cmake", timeout=300)
    deb = next(tmp_path.glob("gaze_*.deb"))
    files = sh("dpkg-deb", "-c", deb).stdout
    for f in ("./usr/bin/gaze", "./usr/lib/libgaze.so.0", "./usr/lib/pkgconfig/gaze.pc",
              "./usr/lib/cmake/gaze/gazeConfig.cmake", "./usr/include/gaze/tasks/task.h"):
        assert f in files, f
    depends = sh("dpkg-deb", "-f", deb, "Depends").stdout
    for lib in ("libdnnl", "libhwy", "libsentencepiece", "libyaml-cpp", "libgomp1"):
        assert lib in depends
    # apt would install it on this Debian without anything missing (a dry run; `make deb` then
    # `apt-get install ./build/gaze_*.deb` installs it for real).
    res = subprocess.run(["apt-get", "install", "-s", "-q", str(deb)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "Inst gaze" in res.stdout or "gaze is already the newest" in res.stdout


def test_version_everywhere(model):
    version = run("--version", check=0).stdout.strip()
    assert version == run("version", check=0).stdout.strip()
    line = version.removeprefix("gaze ")
    assert (model / "config.yaml").read_text().splitlines()[0] == f"# gaze {line}"
    for folder in ("best", "last"):
        b = (model / folder / "model.safetensors").read_bytes()
        meta = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
        assert f"{meta['gaze_version']} (commit {meta['gaze_commit']})" == line


def test_pip_installs_a_working_package_into_a_fresh_venv(model, tmp_path):
    venv = tmp_path / "venv"
    sh("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv)
    # No downloads: the build tools are Debian's; the compiled parts come from the build folder.
    env = dict(os.environ, GAZE_BUILD_DIR=str(BUILD))
    env.pop("PYTHONPATH", None)
    sh(venv / "bin" / "pip", "install", "--no-build-isolation", "--no-index", "-q", ROOT, env=env)
    # Outside the source and build trees: the installed package alone.
    code = ("import json, gaze; p = gaze.load(%r); "
            "print(json.dumps([gaze.__version__, gaze.__file__, p(['What a great phone!'])]))" % str(model))
    out = json.loads(sh(venv / "bin" / "python", "-c", code, env=clean_env(), cwd=tmp_path).stdout)
    cli_version = run("--version", check=0).stdout.split()[1]
    assert out[0] == cli_version
    assert out[1].startswith(str(venv))
    want = json.loads(run("predict", "--model", model, stdin="What a great phone!\n", check=0).stdout)
    assert out[2][0]["label"] == want["label"] and abs(out[2][0]["score"] - want["score"]) < 1e-6
    # The `gaze` command is an entry point of the package.
    assert sh(venv / "bin" / "gaze", "--version", env=clean_env()).stdout == run("--version", check=0).stdout
    pred = sh(venv / "bin" / "gaze", "predict", "--model", model, stdin="What a great phone!\n", env=clean_env())
    assert json.loads(pred.stdout) == want
