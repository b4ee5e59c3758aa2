import azaion_training


def test_all_lists_exactly_the_public_names() -> None:
    public = sorted(
        name
        for name in dir(azaion_training)
        if not name.startswith("_")
        and not isinstance(getattr(azaion_training, name), type(azaion_training))
    )
    assert sorted(azaion_training.__all__) == sorted([*public, "__version__"])


def test_version_comes_from_the_installed_metadata() -> None:
    assert azaion_training.__version__ != "0.0.0"
