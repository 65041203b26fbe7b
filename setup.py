"""Which packages the wheel holds; everything else about packaging is in pyproject.toml.

The packages under fer_edge/ are found. The recipes and profiles live in the top-level train/,
convert/ and devices/ folders and are installed inside the package under the names below;
setuptools' `find` cannot see a folder mapped to another name, so these are added here with it.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = {  # installed package -> its folder in the repository (*.toml: pyproject's package-data)
    "fer_edge.recipes": "train/recipes",
    "fer_edge.quant_profiles": "convert/profiles",
    "fer_edge.device_profiles": "devices/profiles",
}

setup(packages=find_packages(include=["fer_edge", "fer_edge.*"]) + list(DATA_PACKAGES), package_dir=DATA_PACKAGES)
