"""setuptools hook (all metadata is in pyproject.toml): a wheel that carries the mypyc-compiled syslog
parser (scripts/build_native.py, run by scripts/bundle.sh before the wheel is built) is tagged for its
interpreter and platform instead of `py3-none-any`."""

from pathlib import Path

from setuptools import setup
from setuptools.dist import Distribution


class _Dist(Distribution):
    def has_ext_modules(self) -> bool:
        return any((Path(__file__).parent / "collectors" / "syslog").glob("*.so"))


setup(distclass=_Dist)
