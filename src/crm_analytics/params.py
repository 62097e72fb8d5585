"""Dataset params files: ``params/<dataset>.yaml`` or the folder ``params/<dataset>/``.

A params file names the dataset's source and sets every knob of its notebooks::

    description: Generated demo shop, ~20,000 customers over two years
    source:                      # where the raw data comes from (see crm_analytics.sources)
      kind: demo
      n_customers: 20000
      seed: 42
    notebooks: [01_data_cleaning, 02_segmentation]   # optional; default: every pipeline notebook
    currency: TRY                # any other key is a parameter of one or more notebooks
    horizon_days: 365

Keys other than the reserved ``description``, ``source`` and ``notebooks`` must be
declared in the parameters cell of at least one of the dataset's notebooks, and a
value must have the type that cell declares. One name has one meaning across notebooks.

In the folder form, ``params/<dataset>/dataset.yaml`` holds the reserved and shared
keys and ``params/<dataset>/<notebook>.yaml`` the keys of one notebook.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any

import yaml

from crm_analytics import paths
from crm_analytics.errors import ParamsError

__all__ = [
    "RESERVED_KEYS",
    "load_params",
    "notebook_parameters",
    "pipeline_notebooks",
    "resolve_notebook_params",
    "check_type",
]

RESERVED_KEYS = ("description", "source", "notebooks")

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


def pipeline_notebooks() -> list[str]:
    """Stems of the pipeline notebooks (``notebooks/NN_topic.ipynb``), in order."""
    return sorted(
        p.stem
        for p in paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb")
        if not p.name.endswith(".FAILED.ipynb")
    )


def notebook_parameters(notebook: str) -> dict[str, dict[str, Any]]:
    """The parameters cell of *notebook*: name -> {type, default, help}.

    Uses ``papermill.inspect_notebook`` (the same parser papermill injects with).
    """
    import papermill

    path = paths.notebooks_dir() / f"{notebook}.ipynb"
    if not path.exists():
        raise ParamsError(f"{path}: notebook does not exist; notebooks are {pipeline_notebooks()}")
    found = papermill.inspect_notebook(str(path))
    return {
        name: {"type": info["inferred_type_name"], "default": info["default"], "help": info["help"]}
        for name, info in found.items()
    }


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(
            f"{path}: params file does not exist; create it (copy params/demo.yaml) "
            "or pick a dataset from params/"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def load_params(dataset: str) -> dict[str, Any]:
    """Read the params of *dataset* as ``{"file": ..., "shared": {...}, "per_notebook": {...}}``.

    Raises
    ------
    ParamsError
        When the file is missing or not a YAML mapping.
    """
    where = paths.params_path(dataset)
    if where.is_dir():
        shared_file = where / "dataset.yaml"
        shared = _read_yaml(shared_file)
        per_nb = {}
        for f in sorted(where.glob("*.yaml")):
            if f.name != "dataset.yaml":
                per_nb[f.stem] = (_read_yaml(f), f)
        return {"file": shared_file, "shared": shared, "per_notebook": per_nb}
    return {"file": where, "shared": _read_yaml(where), "per_notebook": {}}


def check_type(value: Any, type_name: str) -> bool:
    """Whether *value* fits the parameters-cell annotation *type_name*."""
    if value is None:
        return type_name in ("None", "Optional")
    allowed = _TYPES.get(type_name)
    if allowed is None:  # an annotation we do not police (e.g. Optional[int])
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: Keys whose values need more than a type check, checked before any notebook starts: key ->
#: "module:function" raising ParamsError. Named, not imported, so that this module (which every
#: notebook uses) does not make every notebook depend on the checking module; an empty value
#: means the notebook's default and is not checked.
VALUE_CHECKS = {"segment_map": "crm_analytics.segmentation:validate_segment_map"}


def _check_value(key: str, value: Any, where: Path) -> None:
    target = VALUE_CHECKS.get(key)
    if target is None or not value:
        return
    module, function = target.split(":")
    check = getattr(importlib.import_module(module), function)
    try:
        check(value)
    except ParamsError as exc:
        raise ParamsError(f"{where}: key {key!r}: {exc}") from None


def resolve_notebook_params(dataset: str) -> dict[str, Any]:
    """Validate the params of *dataset* against its notebooks and split them per notebook.

    Returns
    -------
    dict
        ``{"source": {...}, "notebooks": [...], "per_notebook": {notebook: {key: value}}}``;
        every notebook's dict starts with ``dataset``.

    Raises
    ------
    ParamsError
        Naming the file, the key and the allowed keys, for an unknown key, a value of the
        wrong type, an unknown notebook or a missing source.
    """
    loaded = load_params(dataset)
    file, shared = loaded["file"], loaded["shared"]
    available = pipeline_notebooks()
    notebooks = shared.get("notebooks", available)
    if not isinstance(notebooks, list) or not all(isinstance(n, str) for n in notebooks):
        raise ParamsError(f"{file}: key 'notebooks' must be a list of notebook names, e.g. {available}")
    for nb in notebooks:
        if nb not in available:
            raise ParamsError(f"{file}: key 'notebooks' names {nb!r}, which is not a pipeline notebook; "
                              f"notebooks are {available}")
    source = shared.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("kind"), str):
        raise ParamsError(f"{file}: key 'source' must be a mapping with a 'kind' "
                          "(e.g. source: {kind: demo, n_customers: 20000, seed: 42})")
    declared = {nb: notebook_parameters(nb) for nb in notebooks}
    allowed = sorted({k for d in declared.values() for k in d if k != "dataset"})

    def check(key: str, value: Any, where: Path, owners: list[str]) -> None:
        if not owners:
            raise ParamsError(
                f"{where}: unknown key {key!r}{_suggest(key, allowed + list(RESERVED_KEYS))}; "
                f"allowed keys are {list(RESERVED_KEYS) + allowed}"
            )
        for nb in owners:
            want = declared[nb][key]["type"]
            if not check_type(value, want):
                raise ParamsError(
                    f"{where}: key {key!r} must be {want} (as declared in notebooks/{nb}.ipynb), "
                    f"got {type(value).__name__} {value!r}"
                )
        _check_value(key, value, where)

    per_notebook: dict[str, dict[str, Any]] = {nb: {"dataset": dataset} for nb in notebooks}
    for key, value in shared.items():
        if key in RESERVED_KEYS:
            continue
        if key == "dataset":
            raise ParamsError(f"{file}: key 'dataset' is set from the file name; remove it")
        owners = [nb for nb in notebooks if key in declared[nb]]
        check(key, value, file, owners)
        for nb in owners:
            per_notebook[nb][key] = value
    for nb, (values, where) in loaded["per_notebook"].items():
        if nb not in notebooks:
            raise ParamsError(f"{where}: {nb!r} is not a notebook of dataset {dataset!r}; "
                              f"notebooks are {notebooks}")
        nb_allowed = sorted(k for k in declared[nb] if k != "dataset")
        for key, value in values.items():
            if key not in declared[nb] or key == "dataset":
                raise ParamsError(f"{where}: unknown key {key!r}{_suggest(key, nb_allowed)}; "
                                  f"allowed keys of {nb} are {nb_allowed}")
            check(key, value, where, [nb])
            per_notebook[nb][key] = value
    return {
        "source": source,
        "notebooks": notebooks,
        "per_notebook": per_notebook,
        "file": str(file),
        "description": shared.get("description", ""),
    }
