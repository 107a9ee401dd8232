"""The offline bundle: built by scripts/bundle.sh (`make bundle`), installed with no registry at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from collectors.syslog import native
from logstore import native as logstore_native
from tests.support.paths import ROOT

# What the installed govnet's compiled modules are: each guard's verdict and the modules loaded, for
# a parsed and numbered line.
_NATIVE_BUILD = (
    "from collectors.syslog import native, parse\n"
    "from collectors.syslog.formats import load_formats\n"
    "from logstore import batch, native as logstore_native\n"
    "rec = parse.parse_frame(b'<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):protocol=6, "
    "source-ip=10.1.1.2.', 1.7e9, '10.0.0.1:514', 'tcp', load_formats(), {})\n"
    "run = batch.number([rec], 1)\n"
    "for n in (native.NATIVE, logstore_native.NATIVE):\n"
    "    print(n.status().state, *sorted(set(n.loaded().values())), end=' ')\n"
    "print(rec['format'], run.count)\n"
)


def _offline_env() -> dict[str, str]:
    # No registry and no machine-wide pip settings: an index that points nowhere, no find-links.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env.update(PIP_NO_INDEX="1", PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_CONFIG_FILE=os.devnull)
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, BUNDLE_OUT=str(out), PYTHON=sys.executable)
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / "scripts" / "bundle.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    archive = Path(proc.stdout.strip().splitlines()[-1])
    print(f"\nbundle built in {time.monotonic() - t0:.1f}s: {archive.stat().st_size / 2**20:.1f} MiB")
    assert archive.parent == out and archive.name.startswith("govnet-bundle-")
    # The .sha256 beside it matches the archive.
    digest = subprocess.run(["sha256sum", archive.name], cwd=out, capture_output=True, text=True).stdout
    assert (out / f"{archive.name}.sha256").read_text() == digest
    with tarfile.open(archive) as tar:
        tops = {m.name.split("/")[0] for m in tar.getmembers()}
        assert len(tops) == 1  # one folder, not files sprayed into the cwd
        tar.extractall(out, filter="data")
    return out / tops.pop()


def test_bundle_contents(bundle: Path) -> None:
    wheels = sorted(p.name for p in (bundle / "wheels").iterdir())
    assert all(w.endswith(".whl") for w in wheels)  # no sdist: nothing to build offline
    assert any(w.startswith("govnet-") for w in wheels)
    # Binary wheels for CPython 3.11 on this platform are in (gufo-snmp's Rust core, pydantic-core).
    assert any(w.startswith("gufo_snmp-") and "cp311" in w for w in wheels)
    assert any(w.startswith("pydantic_core-") for w in wheels)
    pkgs = (bundle / "debian-packages.txt").read_text().split()
    assert {"snmpd", "prometheus", "python3-venv"} <= set(pkgs)
    assert not [p for p in pkgs if p.startswith("#")]
    listed = {line.split(maxsplit=1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()}
    present = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == present
    assert (bundle / "deploy" / "systemd" / "govnet.service").is_file()


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(folder / "install.sh"), "--verify-only"], capture_output=True, text=True, env=_offline_env()
    )


def test_install_refuses_damaged_or_extended_bundle(bundle: Path, tmp_path: Path) -> None:
    assert _verify(bundle).returncode == 0
    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged)
    wheel = next((damaged / "wheels").glob("pyyaml-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    proc = _verify(damaged)
    assert proc.returncode != 0 and "checksum mismatch" in proc.stderr
    extended = tmp_path / "extended"
    shutil.copytree(bundle, extended)
    (extended / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
    proc = _verify(extended)
    assert proc.returncode != 0 and "evil-1.0-py3-none-any.whl" in proc.stderr


def test_offline_install_runs_govnet(bundle: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = _offline_env()
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(bundle / "install.sh"), "--prefix", str(venv), "--python", sys.executable],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"\noffline install in {time.monotonic() - t0:.1f}s")
    govnet = venv / "bin" / "govnet"
    # From outside the source tree, so nothing can be imported from the checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import govnet, inventory; print(govnet.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(venv / "lib"))
    # The wheel carries the mypyc-compiled modules whenever this checkout could build them.
    loaded = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _NATIVE_BUILD], capture_output=True, text=True, env=env,
        cwd=tmp_path, check=True,
    ).stdout.split()  # fmt: skip
    want = [
        "compiled" if n.check().state == "compiled" else "source"
        for n in (native.NATIVE, logstore_native.NATIVE)
    ]
    assert loaded == [want[0], want[0], want[1], want[1], "huawei", "1"]
    helped = subprocess.run([str(govnet), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert helped.returncode == 0 and "check-inventory" in helped.stdout
    checked = subprocess.run(
        [str(govnet), "check-inventory", str(ROOT / "examples" / "district.yaml")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "133 devices" in checked.stdout
    # The bundled service config validates with the installed govnet too.
    inv = subprocess.run(
        [str(govnet), "check-inventory", str(bundle / "deploy" / "etc" / "govnet" / "inventory.yaml")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert inv.returncode == 0, inv.stdout + inv.stderr
