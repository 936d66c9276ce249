"""Packages: promisifier, plus our twistd plugin installed into Twisted's plugin folder.

twistd discovers plugins only in `twisted/plugins` folders on sys.path, so the top-level
`twisted_plugins/` folder is installed as the package `twisted.plugins` (see package_dir in
setup.cfg). It has no `__init__.py` on purpose: the wheel then holds only
`twisted/plugins/promisifier_relay.py` and never overwrites Twisted's own `__init__.py`.
Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["promisifier", "promisifier.*"]), "twisted.plugins"])
