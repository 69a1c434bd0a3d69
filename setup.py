"""Packaging beyond what setup.cfg can say: the top-level ``templates/`` folder (the
builder's pages) stays where it is in the tree and ships inside the wheel as
``web/templates``, where ``web.TEMPLATES_DIR`` finds it in an installed copy. Folders
without ``__init__.py`` (the migration environment, static files) are namespace packages
here so that their files ship as package data."""

from setuptools import find_namespace_packages, setup

packages = find_namespace_packages(
    include=["engine", "engine.*", "web", "web.*"], exclude=["*.__pycache__"]
)
templates = find_namespace_packages(where="templates", exclude=["*.__pycache__"])
setup(
    packages=[*packages, "web.templates", *(f"web.templates.{name}" for name in templates)],
    package_dir={"web.templates": "templates"},
)
