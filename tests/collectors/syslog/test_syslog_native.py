"""The compiled modules (core/native.py: the syslog parse path and the log store's numbering with mypyc,
the log store's hashing in C): in use when built and fresh, never shadowing an edited source (a `.py` or
a `.c`), and giving exactly the records and store lines the pure-Python modules give."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.syslog import native as syslog_native
from collectors.syslog.parse import parse_frame
from core.native import EXT_SUFFIX, MANIFEST, CModule, Native
from logstore import native as logstore_native
from logstore.batch import number
from logstore.merkle import merkle_root
from logstore.record import new_record
from tests.support import syslog_corpus
from tests.support.paths import ROOT

STRICT = os.environ.get("GOVNET_STRICT") == "1"
NATIVES = {"syslog": syslog_native.NATIVE, "logstore": logstore_native.NATIVE}

# A record the probe numbers in a fresh interpreter ("" values and all), and what it must come to.
_REC = {
    "recv_ts": "2024-03-12T10:46:04.000000Z",
    "device": "fw1",
    "user": "",
    "src_ip": "10.1.1.2",
    "msg": "中",
}
_RUN = number([new_record(**_REC)], 7)
# Per package: what a fresh interpreter imports and prints after the guard's verdict, and that output.
PROBES = {
    "syslog": (
        "from collectors.syslog.formats import load_formats\n"
        "from collectors.syslog.parse import parse_frame\n"
        "rec = parse_frame(b'<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):protocol=6, "
        "source-ip=10.1.1.2, rule-name=r1.', 1.7e9, '10.0.0.1:514', 'tcp', load_formats(), {})\n"
        "out = [rec['format'], rec['src_ip']]\n",
        ["huawei", "10.1.1.2"],
    ),
    "logstore": (
        "from logstore.batch import number\n"
        "from logstore.record import new_record\n"
        f"run = number([new_record(**{_REC!r})], 7)\n"
        "from logstore.digest import merkle_root_packed as root\n"
        "out = [run.leaves.hex(), str(bytes(run.lines).count(b'null')), root(run.leaves * 3)]\n",
        [_RUN.leaves.hex(), str(bytes(_RUN.lines).count(b"null")), merkle_root([_RUN.leaves.hex()] * 3)],
    ),
}


@pytest.mark.parametrize("name", NATIVES)
def test_compiled_modules_are_the_ones_imported(name: str) -> None:
    """Under GOVNET_STRICT=1 (make test) the tests run the fresh compiled modules, or fail here."""
    native = NATIVES[name]
    found = native.check()
    loaded = native.loaded()
    # This file imported parse and batch (and what they import: batch imports the log store's digest).
    assert set(loaded) == set(native.module_names())
    if STRICT:
        assert found.state == "compiled", f"{found.reason}: run `make bootstrap` (scripts/build_native.py)"
    want = "compiled" if found.state == "compiled" else "source"
    assert loaded == dict.fromkeys(native.module_names(), want)
    assert native.status() == found
    if want == "compiled":
        module = parse_frame.__module__ if name == "syslog" else number.__module__
        assert str(sys.modules[module].__file__).endswith(EXT_SUFFIX)


def test_compiled_and_python_records_are_identical(tmp_path: Path) -> None:
    """Every sample, format example and seeded mutation: the same canonical bytes from both builds; those
    records and odd ones numbered in runs: the same store lines, leaves, tallies and terms."""
    here = syslog_corpus.full_dump()
    out = tmp_path / "python.jsonl"
    env = {**os.environ, "GOVNET_NATIVE": "0"}
    subprocess.run(
        [sys.executable, "-m", "tests.support.syslog_corpus", str(out)], cwd=ROOT, env=env, check=True
    )
    mine, theirs = here.splitlines(), out.read_bytes().splitlines()
    assert len(mine) == len(theirs) > 20000
    differ = [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]
    assert not differ, (len(differ), mine[differ[0]][:600], theirs[differ[0]][:600])
    parsed = sum(1 for _ in syslog_corpus.frames(syslog_corpus.texts()))
    assert parsed > 5000 and not any(b"parse_error" in line for line in mine[:parsed])
    # The numbering saw "" values (they became null) and needed the standard library's encoder.
    assert b'"user":""' not in here and b'"src_port":1180591620717411303424' in here


def _copy_packages(dest: Path, with_build: bool) -> dict[str, Path]:
    """The compiled packages' sources (and, unless told otherwise, nothing else) under `dest`."""
    out = {}
    for name, native in NATIVES.items():
        pkg = dest / native.folder.relative_to(ROOT)
        pkg.mkdir(parents=True)
        for path in [*native.folder.glob("*.py"), *native.folder.glob("*.c")]:
            shutil.copy2(path, pkg / path.name)
        if with_build:
            for path in native.built_files():
                shutil.copy2(path, pkg / path.name)
        out[name] = pkg
    shutil.copytree(syslog_native.NATIVE.folder / "formats", out["syslog"] / "formats")
    (dest / "collectors" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "core", dest / "core", ignore=shutil.ignore_patterns("__pycache__"))
    return out


def _import(root: Path, name: str, strict: bool) -> subprocess.CompletedProcess[str]:
    """Use package `name` from `root` in a fresh interpreter; print the guard's verdict, what was loaded
    and the probe's output."""
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        f"from {NATIVES[name].package} import native\n"
        f"{PROBES[name][0]}"
        "print(native.NATIVE.status().state, sorted(set(native.NATIVE.loaded().values())), *out)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root), "GOVNET_STRICT": "1" if strict else "0"}
    env.pop("GOVNET_NATIVE", None)
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def _fake_build(native: Native, pkg: Path, manifest: bool) -> None:
    """Extensions that are not loadable at all (a guard letting one through fails the import), and
    optionally a manifest naming today's sources."""
    for name in native.names():
        (pkg / f"{name}{EXT_SUFFIX}").write_bytes(b"not an ELF object")
    if manifest:
        hashes = native.source_hashes(pkg)
        (pkg / MANIFEST).write_text(json.dumps({"sources": hashes, "suffix": EXT_SUFFIX}))


# Each way a build goes stale, per package (the C module's cases only where there is one).
C_CASES = ("edited_c_source", "edited_c_reference", "c_source_missing")
STALE = [
    (name, case)
    for name, native in NATIVES.items()
    for case in ("edited_source", "no_manifest", "module_missing", *C_CASES)
    if native.c_modules or case not in C_CASES
]


@pytest.mark.parametrize(("name", "case"), STALE)
def test_a_stale_build_never_shadows_the_source(tmp_path: Path, case: str, name: str) -> None:
    native = NATIVES[name]
    pkg = _copy_packages(tmp_path, with_build=False)[name]
    _fake_build(native, pkg, manifest=case != "no_manifest")
    assert native.check(pkg).state == ("stale" if case == "no_manifest" else "compiled")  # until the edit
    edited = {
        "edited_source": f"{native.modules[0]}.py",
        "edited_c_source": f"{native.c_modules[0].name}.c" if native.c_modules else "",
        "edited_c_reference": f"{native.c_modules[0].name}.py" if native.c_modules else "",
    }.get(case)
    if edited:
        with (pkg / edited).open("a") as f:
            f.write(
                "\n/* edited after the build */\n"
                if edited.endswith(".c")
                else "\n# edited after the build\n"
            )
        assert native.check(pkg).reason == f"source changed since the build: {edited}"
    elif case == "c_source_missing":  # installed without it: the manifest cannot be checked
        (pkg / f"{native.c_modules[0].name}.c").unlink()
        assert native.check(pkg).reason == f"a source is missing: {native.c_modules[0].name}.c"
    elif case == "module_missing":
        (pkg / f"{native.names()[-1]}{EXT_SUFFIX}").unlink()
    relaxed = _import(tmp_path, name, strict=False)
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.split() == ["stale", "['source']", *PROBES[name][1]]
    assert f"compiled {native.what}" in relaxed.stderr and "is stale" in relaxed.stderr  # the warning
    strict = _import(tmp_path, name, strict=True)
    assert strict.returncode != 0
    assert "ImportError" in strict.stderr and "GOVNET_STRICT=1 refuses" in strict.stderr


@pytest.mark.parametrize("name", NATIVES)
def test_no_build_means_the_python_sources_quietly(tmp_path: Path, name: str) -> None:
    _copy_packages(tmp_path, with_build=False)
    proc = _import(tmp_path, name, strict=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["source", "['source']", *PROBES[name][1]]
    assert "stale" not in proc.stderr


@pytest.mark.parametrize("name", NATIVES)
def test_a_fresh_build_is_used_wherever_it_is_installed(tmp_path: Path, name: str) -> None:
    """The real build copied elsewhere (as a wheel installs it) is fresh there too; editing one of its
    sources makes it stale."""
    native = NATIVES[name]
    if not STRICT and native.check().state != "compiled":
        _copy_packages(tmp_path, with_build=False)  # nothing built here: the copy has the sources only
        assert _import(tmp_path, name, strict=False).stdout.split()[:2] == ["source", "['source']"]
        return
    pkg = _copy_packages(tmp_path, with_build=True)[name]
    fresh = _import(tmp_path, name, strict=True)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split() == ["compiled", "['compiled']", *PROBES[name][1]]
    edited = f"{native.c_modules[0].name}.c" if native.c_modules else f"{native.modules[-1]}.py"
    with (pkg / edited).open("a") as f:
        f.write("\n")
    assert native.check(pkg).reason == f"source changed since the build: {edited}"
    stale = _import(tmp_path, name, strict=False)
    assert stale.stdout.split() == ["stale", "['source']", *PROBES[name][1]], stale.stderr


def test_build_without_a_compiler_leaves_pure_python(tmp_path: Path) -> None:
    """No C compiler: the build says so, removes every package's stale build (the guards would refuse
    it anyway) and succeeds unless told compiled modules are required."""
    pkgs = _copy_packages(tmp_path, with_build=False)
    for name, native in NATIVES.items():
        _fake_build(native, pkgs[name], manifest=False)
    script = ROOT / "scripts" / "build_native.py"
    env = {**os.environ, "PATH": str(tmp_path / "no-bin"), "CC": "gcc"}  # nothing on PATH: no gcc
    built = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    assert "no C compiler" in built.stderr and "pure Python" in built.stderr
    for name, native in NATIVES.items():
        assert native.built_files(pkgs[name]) == []
        assert native.check(pkgs[name]).state == "source"
    required = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path), "--require"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert required.returncode == 1 and "no C compiler" in required.stderr


def test_a_c_module_without_its_headers_leaves_its_package_pure_python(tmp_path: Path) -> None:
    """The build looks for a C module's headers (the Debian -dev package) before compiling: missing, the
    package is cleaned and left to its Python sources, with a message naming the package to install."""
    spec = importlib.util.spec_from_file_location("build_native", ROOT / "scripts" / "build_native.py")
    assert spec is not None and spec.loader is not None
    build_native = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_native)
    real = logstore_native.NATIVE
    assert build_native.headers_missing(real) is None or not STRICT  # make test builds with libssl-dev
    absent = Native(
        "logstore", tmp_path, real.modules, real.what,
        c_modules=(CModule("digest", ("crypto",), ("openssl/no-such-header.h",), "libssl-dev"),),
    )  # fmt: skip
    why = build_native.headers_missing(absent)
    assert why is not None and "openssl/no-such-header.h" in why and "libssl-dev" in why
    pkgs = _copy_packages(tmp_path, with_build=False)
    _fake_build(real, pkgs["logstore"], manifest=True)
    env = dict(os.environ)
    env["CC"] = "gcc -nostdinc"  # finds no header at all: the probe fails before anything is compiled
    script = ROOT / "scripts" / "build_native.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--root", str(tmp_path), "--package", "logstore", "--force"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "openssl/evp.h" in proc.stderr and "logstore's modules run as pure Python" in proc.stderr
    assert logstore_native.NATIVE.check(pkgs["logstore"]).state == "source"
