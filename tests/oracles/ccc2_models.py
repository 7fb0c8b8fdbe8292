"""The official CCC 2.0 Python SDK (`alibabacloud-ccc20200701`) as an oracle of wire shapes.

- `request_parameter_names("MakeCall")`: the POP parameter names the official client sends for
  an action (every field of `MakeCallRequest` set, read back through `to_map()`), so a test can
  assert that the gateway (or the emulator's stand-in SDK) uses exactly the official names.
- `round_trip("MakeCall", body)`: the answer read into `MakeCallResponseBody` and written back;
  equal to `body` exactly when the model knows every field the answer has.
- `type_problems("MakeCall", body)`: fields whose JSON type differs from the model's type.

Test-only: nothing in ccc_gateway imports it.
"""

from __future__ import annotations

import inspect
from typing import Any

from alibabacloud_ccc20200701 import models

_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


def request_model(action: str) -> type[Any]:
    model: type[Any] = getattr(models, f"{action}Request")
    return model


def response_model(action: str) -> type[Any]:
    model: type[Any] = getattr(models, f"{action}ResponseBody")
    return model


def _fields(model: type[Any]) -> dict[str, str]:
    """Constructor argument -> its annotation text (the models use string annotations)."""
    parameters = list(inspect.signature(model.__init__).parameters.values())[1:]
    return {p.name: str(p.annotation) for p in parameters}


def request_parameter_names(action: str) -> frozenset[str]:
    """The wire names of every parameter the official client can send for `action`."""
    model = request_model(action)
    instance = model(**{name: "x" for name in _fields(model)})
    return frozenset(instance.to_map())


def required_parameter_names(action: str) -> frozenset[str]:
    """Parameters the model documents as required ("This parameter is required.")."""
    source = inspect.getsource(request_model(action).__init__)
    required: set[str] = set()
    pending = False
    for line in source.splitlines():
        stripped = line.strip()
        if "This parameter is required." in stripped:
            pending = True
        elif stripped.startswith("self.") and pending:
            attribute = stripped.split("=", 1)[0].strip()[len("self.") :]
            required.add(attribute)
            pending = False
    names = request_model(action)(**{name: "x" for name in required}).to_map()
    return frozenset(names)


def round_trip(action: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` read by the official response model and written back."""
    result: dict[str, Any] = response_model(action)().from_map(body).to_map()
    return result


def type_problems(action: str, body: dict[str, Any]) -> list[str]:
    """`path: want X, got Y` for every value whose type is not the model's."""
    instance = response_model(action)().from_map(body)
    problems: list[str] = []
    _check(instance, action, problems)
    return problems


def _check(instance: Any, path: str, problems: list[str]) -> None:
    for name, annotation in _fields(type(instance)).items():
        value = getattr(instance, name)
        if value is not None:
            _check_value(value, annotation, f"{path}.{name}", problems)


def _check_value(value: Any, annotation: str, path: str, problems: list[str]) -> None:
    if annotation.startswith("List[") and annotation.endswith("]"):
        if not isinstance(value, list):
            problems.append(f"{path}: want a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check_value(item, annotation[5:-1], f"{path}[{index}]", problems)
    elif annotation in _SCALARS:
        wanted = _SCALARS[annotation]
        if not isinstance(value, wanted) or (bool not in wanted and isinstance(value, bool)):
            problems.append(f"{path}: want {annotation}, got {type(value).__name__}")
    elif hasattr(value, "to_map"):  # a nested model, whatever its annotation's spelling
        _check(value, path, problems)
    else:
        problems.append(f"{path}: {annotation} is not a type this oracle knows")
