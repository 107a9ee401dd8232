"""setuptools hook (all metadata is in pyproject.toml): a wheel that carries mypyc-compiled modules
(core/native.py; scripts/build_native.py, run by scripts/bundle.sh before the wheel is built) is tagged
for its interpreter and platform instead of `py3-none-any`."""

from pathlib import Path

from setuptools import setup
from setuptools.dist import Distribution

# The packages with compiled modules (as scripts/build_native.py PACKAGES).
_COMPILED = ("collectors/syslog", "logstore")


class _Dist(Distribution):
    def has_ext_modules(self) -> bool:
        here = Path(__file__).parent
        return any(any((here / folder).glob("*.so")) for folder in _COMPILED)


setup(distclass=_Dist)
