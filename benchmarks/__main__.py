"""Runs each `benchmarks/<name>.py` that has a `main()`, in name order."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    package = Path(__file__).parent
    for module_info in sorted(pkgutil.iter_modules([str(package)]), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{module_info.name}")
        if callable(getattr(module, "main", None)):
            print(f"== {module_info.name}", flush=True)
            module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
