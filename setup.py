"""Packaging beyond what pyproject.toml can say: the top-level ``resources/`` folder (model cards,
model files, licences, the demo clip) is installed as the data-only package ``facescope_resources``,
so a wheel carries its models; ``engine.resources`` finds it there (or in a source tree)."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["engine*", "desktop*", "trt_build*"]) + ["facescope_resources"],
    package_dir={"facescope_resources": "resources"},
    package_data={"engine.train": ["configs/*.yaml"], "facescope_resources": ["**/*"]},
)
