import subprocess
import sys

import azaion_training


def test_every_exported_name_resolves_to_an_object_of_the_package() -> None:
    for name in azaion_training.__all__:
        value = getattr(azaion_training, name)  # raises AttributeError if it does not resolve
        module = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if module:  # classes, functions, modules: defined in the package itself
            assert module.startswith("azaion_training"), (name, module)
        assert not isinstance(value, type(None)), name


def test_all_is_sorted_and_unique() -> None:
    assert azaion_training.__all__ == sorted(set(azaion_training.__all__))


def test_importing_the_package_loads_no_heavy_library() -> None:
    heavy = "{'torch', 'ultralytics', 'boto3', 'rstream', 'cv2'}"
    code = f"import sys, azaion_training; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_comes_from_the_installed_metadata() -> None:
    assert azaion_training.__version__ != "0.0.0"
