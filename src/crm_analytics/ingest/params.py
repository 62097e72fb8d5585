"""Dataset params files: ``params/<dataset>.yaml`` or the folder ``params/<dataset>/``.

A params file names the dataset's source and sets every knob of its notebooks::

    description: Generated demo shop, ~20,000 customers over two years
    source:                      # where the raw data comes from (see crm_analytics.ingest.sources)
      kind: demo
      n_customers: 20000
      seed: 42
    notebooks: [01_data_cleaning, 02_segmentation]   # optional; default: every pipeline notebook the source can feed
    currency: TRY                # any other key is a parameter of one or more notebooks
    horizon_days: 365

Keys other than the reserved ``description``, ``source`` and ``notebooks`` must be
declared in the parameters cell of at least one of the dataset's notebooks, and a
value must have the type that cell declares and obey the key's rule in
:data:`crm_analytics.ingest.params_rules.RULES` (allowed words, dates, formats, ranges, feature
names). One name has one meaning across notebooks. All of this is checked by
``python -m crm_analytics.pipeline configure DATASET`` before any notebook starts.

In the folder form, ``params/<dataset>/dataset.yaml`` holds the reserved and shared
keys and ``params/<dataset>/<notebook>.yaml`` the keys of one notebook.

A notebook may declare what its data must hold in its metadata, ``"crm_analytics": {"requires":
"behaviour"}`` (one name or a list; :data:`REQUIREMENTS`: ``behaviour``, ``reviews``). Without ``notebooks:`` in the params file, a
notebook whose requirement the source cannot meet is left out, and the resolved params say why
(``skipped``: notebook -> one sentence, shown on the dataset's index page); a ``notebooks:`` list naming
such a notebook is refused.
"""

from __future__ import annotations

import ast
import datetime
import difflib
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
    "notebook_requires",
    "unmet_requirement",
    "REQUIREMENTS",
    "check_type",
    "check_value",
    "check_relations",
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


def _requirement_behaviour(source: dict) -> str | None:
    from crm_analytics.ingest.sources import behaviour_data

    return behaviour_data(source)


def _requirement_reviews(source: dict) -> str | None:
    from crm_analytics.ingest.sources import review_data

    return review_data(source)


#: requirement name (``metadata.crm_analytics.requires`` of a notebook) -> check of a validated source,
#: returning ``None`` when the source meets it, else one sentence why not
REQUIREMENTS = {
    "behaviour": _requirement_behaviour,  # a clickstream or session summaries: crm_analytics.ingest.sources.behaviour_data
    # a reviews table (the generated world, reviews_tr, reviews_en, a files source mapping a reviews export):
    # crm_analytics.ingest.sources.review_data
    "reviews": _requirement_reviews,
}


def notebook_requires(notebook: str) -> list[str]:
    """What *notebook* needs of a dataset's data (``metadata.crm_analytics.requires``: one name or a list,
    see :data:`REQUIREMENTS`); ``[]`` when it declares nothing.

    Raises
    ------
    ParamsError
        An unknown requirement name, naming the notebook and the known names.
    """
    import json

    path = paths.notebooks_dir() / f"{notebook}.ipynb"
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("crm_analytics", {}) or {}
    wanted = meta.get("requires") or []
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [w for w in wanted if w not in REQUIREMENTS]
    if unknown:
        raise ParamsError(f"notebooks/{notebook}.ipynb: metadata crm_analytics.requires names {unknown[0]!r}; "
                          f"requirements are {sorted(REQUIREMENTS)}")
    return wanted


def unmet_requirement(notebook: str, source: dict) -> str | None:
    """``None`` when *source* (validated, see :func:`crm_analytics.ingest.sources.validate_source`) meets what
    *notebook* requires (:func:`notebook_requires`), else the sentence saying why not."""
    for name in notebook_requires(notebook):
        reason = REQUIREMENTS[name](source)
        if reason:
            return reason
    return None


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


def _shown(path: Path) -> str:
    """*path* as messages show it: relative to the project root when inside it."""
    try:
        return str(Path(path).resolve().relative_to(paths.project_root()))
    except ValueError:
        return str(path)


def _literal_defaults(defaults: dict[str, str]) -> dict[str, Any]:
    """A parameters cell's defaults (source text, as papermill reports them) as values, where literal."""
    out = {}
    for key, text in defaults.items():
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    return out


def check_value(key: str, value: Any, where: str) -> None:
    """Check *value* of parameter *key* against its rule in :data:`crm_analytics.ingest.params_rules.RULES`.

    A key without a rule is not checked here (a test requires every notebook parameter to have one).

    Raises
    ------
    ParamsError
        ``"<where>: key 'time_unit' must be one of ['day', 'month', 'week'], got 'weak' (did you mean 'week'?)"``
    """
    from crm_analytics.ingest.params_rules import RULES

    rule = RULES.get(key)
    problem = rule.problem(value) if rule is not None else None
    if problem:
        raise ParamsError(f"{where}: key {key!r}{'' if problem.startswith(':') else ' '}{problem}")


def check_relations(values: dict[str, Any], defaults: dict[str, Any], where: str, notebook: str) -> None:
    """Check the rules between two parameters (:data:`crm_analytics.ingest.params_rules.RELATIONS`) on one
    notebook's *values*, its *defaults* filling in what the params file leaves out."""
    from crm_analytics.ingest.params_rules import RELATIONS

    for rel in RELATIONS:
        if rel.first not in defaults or rel.second not in defaults:
            continue
        if rel.first not in values and rel.second not in values:
            continue  # the notebook's own defaults (tests hold those)
        a, b = (values.get(k, defaults[k]) for k in (rel.first, rel.second))
        if not rel.holds(a, b):
            given = [f"{k} = {v!r}" + ("" if k in values else f" (the default of {notebook})")
                     for k, v in ((rel.first, a), (rel.second, b))]
            raise ParamsError(f"{where}: keys {rel.first!r} and {rel.second!r}: {rel.text}, got {' and '.join(given)}")


def resolve_notebook_params(dataset: str) -> dict[str, Any]:
    """Validate the params of *dataset* against its notebooks and split them per notebook.

    Returns
    -------
    dict
        ``{"source": {...}, "notebooks": [...], "per_notebook": {notebook: {key: value}}, "file": ...,
        "description": ..., "skipped": {notebook: reason}}``; every notebook's dict starts with ``dataset``;
        ``file`` is the params file as messages show it; ``skipped`` lists the pipeline notebooks not run
        because the source cannot meet what they require (:func:`unmet_requirement`), each with the sentence
        why, in pipeline order.

    Raises
    ------
    ParamsError
        Naming the file, the key and the allowed keys or values, for an unknown key, a value of
        the wrong type or against its rule (:mod:`crm_analytics.ingest.params_rules`), an unknown
        notebook, a notebook the source cannot feed, or a missing source.
    """
    from crm_analytics.ingest.sources import validate_source

    loaded = load_params(dataset)
    file, shared = _shown(loaded["file"]), loaded["shared"]
    available = pipeline_notebooks()
    listed = "notebooks" in shared
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
    full_source = validate_source(dataset, source, str(file))
    unmet = {nb: reason for nb in available if (reason := unmet_requirement(nb, full_source))}
    for nb in notebooks:
        if listed and nb in unmet:
            raise ParamsError(f"{file}: key 'notebooks' names {nb!r}, which this dataset cannot feed: {unmet[nb]} "
                              f"Remove {nb} from notebooks (or point source at data that has what it needs)")
    skipped = dict(unmet)  # listed or not: a listed one was refused above
    notebooks = [nb for nb in notebooks if nb not in skipped]
    # a key declared only by a skipped notebook is still a known key (its value is checked, and unused)
    declared = {nb: notebook_parameters(nb) for nb in notebooks}
    declared_skipped = {nb: notebook_parameters(nb) for nb in skipped}
    allowed = sorted({k for d in (*declared.values(), *declared_skipped.values()) for k in d if k != "dataset"})
    every = {**declared, **declared_skipped}

    def check(key: str, value: Any, where: str, owners: list[str]) -> None:
        if not owners:
            raise ParamsError(
                f"{where}: unknown key {key!r}{_suggest(key, allowed + list(RESERVED_KEYS))}; "
                f"allowed keys are {list(RESERVED_KEYS) + allowed}"
            )
        for nb in owners:
            want = every[nb][key]["type"]
            if not check_type(value, want):
                hint = ""
                if want == "str" and isinstance(value, (datetime.date, datetime.datetime)):
                    hint = f"; quote dates in YAML: {key}: \"{value}\""
                raise ParamsError(
                    f"{where}: key {key!r} must be {want} (as declared in notebooks/{nb}.ipynb), "
                    f"got {type(value).__name__} {value!r}{hint}"
                )
        check_value(key, value, where)

    per_notebook: dict[str, dict[str, Any]] = {nb: {"dataset": dataset} for nb in notebooks}
    for key, value in shared.items():
        if key in RESERVED_KEYS:
            continue
        if key == "dataset":
            raise ParamsError(f"{file}: key 'dataset' is set from the file name; remove it")
        owners = [nb for nb in notebooks if key in declared[nb]]
        check(key, value, file, owners or [nb for nb in skipped if key in declared_skipped[nb]])
        for nb in owners:
            per_notebook[nb][key] = value
    for nb, (values, path) in loaded["per_notebook"].items():
        where = _shown(path)
        if nb not in notebooks and nb not in skipped:
            raise ParamsError(f"{where}: {nb!r} is not a notebook of dataset {dataset!r}; "
                              f"notebooks are {notebooks}")
        nb_allowed = sorted(k for k in every[nb] if k != "dataset")
        for key, value in values.items():
            if key not in every[nb] or key == "dataset":
                raise ParamsError(f"{where}: unknown key {key!r}{_suggest(key, nb_allowed)}; "
                                  f"allowed keys of {nb} are {nb_allowed}")
            check(key, value, where, [nb])
            if nb in per_notebook:
                per_notebook[nb][key] = value
    for nb in notebooks:
        where = _shown(loaded["per_notebook"][nb][1]) if nb in loaded["per_notebook"] else file
        defaults = {k: info["default"] for k, info in declared[nb].items()}
        check_relations(per_notebook[nb], _literal_defaults(defaults), where, nb)
    return {
        "source": source,
        "notebooks": notebooks,
        "per_notebook": per_notebook,
        "file": str(file),
        "description": shared.get("description", ""),
        "skipped": skipped,
    }
