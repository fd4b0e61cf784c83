"""The services' published contracts, applied to every request the fake Azure transport receives.

The installed SDKs carry models generated from Azure's REST API specifications: their wire names,
required and read-only fields, types and enums. Each request body is checked against the generated
model of its operation, strictly (a property the model does not describe is an error, so is a value
outside its enum). Where no installed SDK has a model (the search service's Resource Manager API,
the registry), a short contract below states the facts taken from the specification, with its path
and commit in azure-rest-api-specs. A request that no contract describes fails.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import inspect
import re
import sys
import typing
from dataclasses import dataclass
from typing import Any, Callable

MISSING = object()


class ContractError(AssertionError):
    """A request its service's contract does not allow."""


def _enum_values(cls: type[enum.Enum]) -> set[str]:
    return {str(member.value) for member in cls}


def _in_enum(value: Any, *classes: type[enum.Enum]) -> bool:
    """Whether the value is one of the enums' values; case-insensitively where the generated enum says the
    service compares so (CaseInsensitiveEnumMeta: azure-ai-ml itself sends the category 'AzureOpenAi')."""
    for cls in classes:
        values = _enum_values(cls)
        if str(value) in values:
            return True
        if type(cls).__name__ == "CaseInsensitiveEnumMeta" and str(value).lower() in {v.lower() for v in values}:
            return True
    return False


# --- models generated in the msrest style (_attribute_map, _validation) -----------------------------------

def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", key))


def _init_enums(cls: type) -> dict[str, type[enum.Enum]]:
    """attribute -> the enum its constructor annotation names (`Union[str, "_models.X"]`)."""
    models = importlib.import_module(cls.__module__.rsplit(".", 1)[0])  # the package's models, enums included
    found = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        for candidate in re.findall(r"_models\.(\w+)", str(parameter.annotation)):
            target = getattr(models, candidate, None)
            if isinstance(target, type) and issubclass(target, enum.Enum):
                found[name] = target
    return found


def _check_msrest(cls: type, body: Any, where: str, open_models: frozenset[str]) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: {cls.__name__} is an object, got {type(body).__name__}"]
    subtypes = getattr(cls, "_subtype_map", None) or {}
    for discriminator, mapping in subtypes.items():
        wire = cls._attribute_map[discriminator]["key"]
        chosen = mapping.get(body.get(wire))
        if chosen:
            cls = getattr(sys.modules[cls.__module__], chosen, cls)
    known = {_split_key(spec["key"]): (attr, spec["type"]) for attr, spec in cls._attribute_map.items()}
    prefixes = {parts[:i] for parts in known for i in range(1, len(parts))}
    problems = []

    def unknown(obj: dict, prefix: tuple) -> None:
        for key, value in obj.items():
            path = prefix + (key,)
            if path in known:
                continue
            if path in prefixes and isinstance(value, dict):
                unknown(value, path)
            elif cls.__name__ not in open_models:
                problems.append(f"{where}.{'.'.join(path)}: {cls.__name__} has no such property")

    unknown(body, ())
    validation = getattr(cls, "_validation", {}) or {}
    enums = _init_enums(cls)
    models = importlib.import_module(cls.__module__.rsplit(".", 1)[0])
    for parts, (attr, type_name) in known.items():
        value: Any = body
        for part in parts:
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
        rules = validation.get(attr, {})
        field = f"{where}.{'.'.join(parts)}"
        if value is MISSING or value is None:
            if rules.get("required") and not rules.get("readonly") and not rules.get("constant"):
                problems.append(f"{field}: required by {cls.__name__}")
            continue
        if rules.get("readonly"):
            problems.append(f"{field}: read-only in {cls.__name__}, never sent")
            continue
        problems += _check_msrest_type(type_name, value, field, models, enums.get(attr), open_models)
    return problems


_MSREST_STRINGS = {"str", "iso-8601", "rfc-1123", "duration", "date", "time", "bytearray", "base64", "unix-time"}


def _check_msrest_type(type_name: str, value: Any, where: str, models, enum_cls, open_models) -> list[str]:
    if type_name.startswith("[") and type_name.endswith("]"):
        if not isinstance(value, list):
            return [f"{where}: a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value)
                for p in _check_msrest_type(type_name[1:-1], item, f"{where}[{i}]", models, enum_cls, open_models)]
    if type_name.startswith("{") and type_name.endswith("}"):
        if not isinstance(value, dict):
            return [f"{where}: an object, got {type(value).__name__}"]
        return [p for key, item in value.items()
                for p in _check_msrest_type(type_name[1:-1], item, f"{where}.{key}", models, enum_cls, open_models)]
    if type_name in _MSREST_STRINGS:
        if not isinstance(value, str):
            return [f"{where}: a string, got {value!r}"]
        if enum_cls is not None and not _in_enum(value, enum_cls):
            return [f"{where}: {value!r} is not one of {enum_cls.__name__} {sorted(_enum_values(enum_cls))}"]
        return []
    if type_name in ("int", "long"):
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: an integer, got {value!r}"]
    if type_name == "float":
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            [f"{where}: a number, got {value!r}"]
    if type_name == "bool":
        return [] if isinstance(value, bool) else [f"{where}: a boolean, got {value!r}"]
    if type_name == "object":
        return []
    target = getattr(models, type_name, None)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return [] if _in_enum(value, target) else \
            [f"{where}: {value!r} is not one of {type_name} {sorted(_enum_values(target))}"]
    if isinstance(target, type) and hasattr(target, "_attribute_map"):
        return _check_msrest(target, value, where, open_models)
    return [f"{where}: no generated type {type_name!r} to check it against"]


# --- models generated in the newer style (rest_field, azure-core model base) ----------------------------

def _rest_fields(cls: type) -> dict[str, tuple[str, Any, Any]]:
    """wire name -> (attribute, rest field, annotation) over the class and its bases."""
    fields, annotations = {}, {}
    for klass in reversed(cls.__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
        for attr, value in vars(klass).items():
            if not attr.startswith("_") and type(value).__name__ == "_RestField":
                fields[attr] = value
    return {(rf._rest_name_input or attr): (attr, rf, annotations.get(attr)) for attr, rf in fields.items()}


def _namespace(cls: type) -> dict:
    """Where a generated model's annotations resolve: its module, and its package's models as `_models`."""
    module = cls.__module__
    return {**vars(typing), "datetime": dt, **vars(sys.modules[module]),
            "_models": importlib.import_module(module.rsplit(".", 1)[0])}


def _resolve(annotation: Any, namespace: dict) -> Any:
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        return eval(annotation, namespace)  # the generated module's own annotation, resolved in its namespace
    return annotation


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "_attr_to_rest_field") or \
        (isinstance(tp, type) and any(type(v).__name__ == "_RestField" for k in tp.__mro__ for v in vars(k).values()))


def _check_model(cls: type, body: Any, where: str, open_models: frozenset[str]) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: {cls.__name__} is an object, got {type(body).__name__}"]
    mapping = getattr(cls, "__mapping__", None) or {}
    if mapping:
        discriminators = [name for name, (_, rf, _) in _rest_fields(cls).items() if rf._is_discriminator]
        for name in discriminators:
            if body.get(name) in mapping:
                cls = mapping[body[name]]
    fields = _rest_fields(cls)
    problems = [f"{where}.{key}: {cls.__name__} has no such property"
                for key in body if key not in fields and cls.__name__ not in open_models]
    namespace = _namespace(cls)
    for name, (attr, rf, annotation) in fields.items():
        tp = _resolve(annotation, namespace)
        optional = typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)
        read_only = rf._visibility == ["read"]
        value = body.get(name, MISSING)
        field = f"{where}.{name}"
        if value is MISSING or value is None:
            if not optional and not read_only and rf._default is getattr(sys.modules[type(rf).__module__], "_UNSET",
                                                                          None) and tp is not typing.Any:
                problems.append(f"{field}: required by {cls.__name__}")
            continue
        if read_only:
            problems.append(f"{field}: read-only in {cls.__name__}, never sent")
            continue
        if rf._format == "commaDelimited" and isinstance(value, str):  # a list sent as "a,b,c"
            value = value.split(",")
        problems += _check_typed(tp, value, field, open_models, namespace)
    return problems


def _check_typed(tp: Any, value: Any, where: str, open_models: frozenset[str], namespace: dict) -> list[str]:
    tp = _resolve(tp, namespace)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any or tp is object:
        return []
    if origin is typing.Union:
        options = [_resolve(a, namespace) for a in args if a is not type(None)]
        enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and isinstance(value, str):
            collection = re.fullmatch(r"Collection\((.+)\)", value)
            if collection and any(e.__name__ == "SearchFieldDataType" for e in enums):
                value = collection.group(1)  # the search service's collection of a primitive type
            allowed = set().union(*(_enum_values(e) for e in enums))
            return [] if _in_enum(value, *enums) else \
                [f"{where}: {value!r} is not one of {'/'.join(e.__name__ for e in enums)} {sorted(allowed)}"]
        results = [_check_typed(option, value, where, open_models, namespace) for option in options]
        return [] if any(not r for r in results) else min(results, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {list(args)}"]
    if origin in (list, typing.List, collections_abc_sequence()):
        if not isinstance(value, list):
            return [f"{where}: a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in _check_typed(args[0] if args else typing.Any, item,
                                                                        f"{where}[{i}]", open_models, namespace)]
    if origin in (dict, typing.Dict, collections_abc_mapping()):
        if not isinstance(value, dict):
            return [f"{where}: an object, got {type(value).__name__}"]
        return [p for key, item in value.items() for p in _check_typed(args[1] if args else typing.Any, item,
                                                                       f"{where}.{key}", open_models, namespace)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [] if _in_enum(value, tp) else \
            [f"{where}: {value!r} is not one of {tp.__name__} {sorted(_enum_values(tp))}"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{where}: a boolean, got {value!r}"]
    if tp is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: an integer, got {value!r}"]
    if tp is float:
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            [f"{where}: a number, got {value!r}"]
    if tp in (str, bytes, dt.datetime, dt.date, dt.timedelta, dt.time):
        return [] if isinstance(value, str) else [f"{where}: a string, got {value!r}"]
    if _is_model(tp):
        return _check_model(tp, value, where, open_models)
    return [f"{where}: no generated type {tp!r} to check it against"]


def collections_abc_sequence():
    import collections.abc
    return collections.abc.Sequence


def collections_abc_mapping():
    import collections.abc
    return collections.abc.Mapping


def check_body(model: type, body: Any, where: str = "body", open_models: frozenset[str] = frozenset()) -> list[str]:
    """Every way `body` breaks the generated model's contract (empty when it keeps it)."""
    if hasattr(model, "_attribute_map"):
        return _check_msrest(model, body, where, open_models)
    return _check_model(model, body, where, open_models)


# --- contracts of our own, for services without a generated model installed ------------------------------

def check_schema(schema: dict, value: Any, where: str = "body") -> list[str]:
    """A small JSON-schema subset (type, properties, required, enum, additionalProperties=False by default)."""
    kind = schema.get("type")
    if "enum" in schema:
        return [] if value in schema["enum"] else [f"{where}: {value!r} is not one of {schema['enum']}"]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: an object, got {type(value).__name__}"]
        properties = schema.get("properties", {})
        problems = [f"{where}.{key}: required" for key in schema.get("required", ()) if key not in value]
        for key, item in value.items():
            if key in properties:
                problems += check_schema(properties[key], item, f"{where}.{key}")
            elif not schema.get("additionalProperties", False):
                problems.append(f"{where}.{key}: the contract has no such property")
        return problems
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "array": lambda v: isinstance(v, list),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)}
    if kind in checks and not checks[kind](value):
        return [f"{where}: a {kind}, got {value!r}"]
    return []


# Microsoft.Search/searchServices, Services_Update (PATCH), api-version 2023-11-01: definitions
# SearchServiceUpdate, SearchServiceProperties, DataPlaneAuthOptions and DataPlaneAadOrApiKeyAuthOption in
# specification/search/resource-manager/Microsoft.Search/stable/2023-11-01/search.json
# (Azure/azure-rest-api-specs, commit 05795bad336565cc5b3b95f2ba6f3425f53e0689). Only the properties sent here.
SEARCH_SERVICE_UPDATE = {"type": "object", "properties": {
    "properties": {"type": "object", "properties": {
        "disableLocalAuth": {"type": "boolean"},
        "authOptions": {"type": "object", "properties": {
            "apiKeyOnly": {"type": "object"},
            "aadOrApiKey": {"type": "object", "properties": {
                "aadAuthFailureMode": {"enum": ["http403", "http401WithBearerChallenge"]}}}}}}}}}

# Microsoft.ContainerRegistry/registries, Registries_Create (PUT), api-version 2023-07-01: definitions Registry,
# Sku (name: Classic, Basic, Standard, Premium; required) and RegistryProperties in
# specification/containerregistry/resource-manager/Microsoft.ContainerRegistry/stable/2023-07-01/containerregistry.json
# (Azure/azure-rest-api-specs, commit 2b2f3d9edcabdc9ee9d0d2980b3247358f0971e1; Resource requires location).
REGISTRY_CREATE = {"type": "object", "required": ["location", "sku"], "properties": {
    "location": {"type": "string"},
    "tags": {"type": "object", "additionalProperties": True},
    "sku": {"type": "object", "required": ["name"], "properties": {
        "name": {"enum": ["Classic", "Basic", "Standard", "Premium"]}}},
    "properties": {"type": "object", "properties": {"adminUserEnabled": {"type": "boolean"}}}}}

# The endpoint's POST /score (no api-version): the project's own contract, contoso_chat.serving.azureml_scoring. The
# service's ChatRequest (question, chat_history) plus the customer's sign-in token in the body; nothing else.
SCORE_REQUEST = {"type": "object", "required": ["question", "customer_token"], "properties": {
    "question": {"type": "string"}, "customer_token": {"type": "string"}, "chat_history": {"type": "array"}}}


# --- which contract describes which request ----------------------------------------------------------------

GROUP = r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers"
SCOPE = r"/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?(?:/providers/[^/]+/[^/]+/[^/]+)*"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # a regular expression, matched in full
    api_versions: tuple[str, ...]
    body: Callable[[], type] | dict | None = None  # a generated model (imported lazily), a schema, or no body
    open_models: frozenset[str] = frozenset()

    def problems(self, body: Any) -> list[str]:
        if self.body is None:
            return [] if body in (None, b"", "") else ["a body where the operation takes none"]
        if isinstance(self.body, dict):
            return check_schema(self.body, body)
        return check_body(self.body(), body, open_models=self.open_models)


def _model(module: str, name: str) -> Callable[[], type]:
    return lambda: getattr(importlib.import_module(module), name)


ML = "azure.ai.ml._restclient.arm_ml_service.models"
COSMOS = "azure.mgmt.cosmosdb.models"
SEARCH_DOCS = "azure.search.documents.models._models"
OPERATIONS = (
    Operation("PUT", rf"{SCOPE}/providers/Microsoft\.Authorization/roleAssignments/[0-9a-f-]{{36}}", ("2022-04-01",),
              _model("azure.mgmt.authorization.v2022_04_01.models", "RoleAssignmentCreateParameters")),
    # Permissions_ListForResourceGroup and Permissions_ListForResource (the caller's own permissions; the
    # generated operations spell the group segment `resourcegroups`, and leave an empty parent path as `//`)
    Operation("GET", r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/Microsoft\.Authorization/permissions",
              ("2022-04-01",)),
    Operation("GET", r"/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[^/]+/(?:[^/]+/[^/]+/)*/?[^/]+/[^/]+/"
                     r"providers/Microsoft\.Authorization/permissions", ("2022-04-01",)),
    Operation("PUT", rf"{GROUP}/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+", ("2024-11-30",),
              _model("azure.mgmt.msi.v2024_11_30.models", "Identity")),
    Operation("GET", rf"{GROUP}/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+", ("2024-11-30",)),
    Operation("PUT", rf"{GROUP}/Microsoft\.DocumentDB/databaseAccounts/[^/]+/sqlRoleAssignments/[0-9a-f-]{{36}}",
              ("2026-03-15",), _model(COSMOS, "SqlRoleAssignmentCreateUpdateParameters")),
    Operation("GET", rf"{GROUP}/Microsoft\.DocumentDB/databaseAccounts/[^/]+/sqlRoleAssignments", ("2026-03-15",)),
    Operation("PUT", rf"{GROUP}/Microsoft\.DocumentDB/databaseAccounts/[^/]+/sqlDatabases/[^/]+", ("2026-03-15",),
              _model(COSMOS, "SqlDatabaseCreateUpdateParameters")),
    Operation("PUT", rf"{GROUP}/Microsoft\.DocumentDB/databaseAccounts/[^/]+/sqlDatabases/[^/]+/containers/[^/]+",
              ("2026-03-15",), _model(COSMOS, "SqlContainerCreateUpdateParameters")),
    Operation("PUT", rf"{GROUP}/Microsoft\.CognitiveServices/accounts/[^/]+/deployments/[^/]+", ("2025-09-01",),
              _model("azure.mgmt.cognitiveservices.models", "Deployment")),
    Operation("GET", r"/subscriptions/[^/]+/providers/Microsoft\.CognitiveServices/locations/[^/]+/models",
              ("2025-09-01",)),
    Operation("GET", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+", ("2024-10-01-preview",)),
    Operation("PUT", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/connections/[^/]+",
              ("2024-04-01-preview",), _model(ML, "WorkspaceConnectionPropertiesV2BasicResource")),
    Operation("PUT", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/[^/]+",
              ("2022-02-01-preview",), _model(ML, "OnlineEndpoint")),
    Operation("GET", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/[^/]+",
              ("2022-02-01-preview", "2023-04-01-preview")),
    Operation("POST", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/[^/]+/listKeys",
              ("2022-02-01-preview", "2023-04-01-preview")),
    Operation("PUT", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/[^/]+/deployments/"
                     r"[^/]+", ("2023-04-01-preview",), _model(ML, "OnlineDeployment")),
    Operation("GET", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/[^/]+/deployments/"
                     r"[^/]+", ("2023-04-01-preview",)),
    Operation("GET", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/environments/[^/]+",
              ("2023-04-01-preview",)),
    Operation("PUT", rf"{GROUP}/Microsoft\.MachineLearningServices/workspaces/[^/]+/environments/[^/]+/versions/[^/]+",
              ("2023-04-01-preview",), _model(ML, "EnvironmentVersion")),
    # the Azure-AsyncOperation URL Azure ML returns for an endpoint or deployment being created (no body)
    Operation("GET", r"/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+/"
                     r"mfeOperationsStatus/[^/]+", ("2022-02-01-preview", "2023-04-01-preview")),
    Operation("PATCH", rf"{GROUP}/Microsoft\.Search/searchServices/[^/]+", ("2023-11-01",), SEARCH_SERVICE_UPDATE),
    Operation("PUT", rf"{GROUP}/Microsoft\.ContainerRegistry/registries/[^/]+", ("2023-07-01",), REGISTRY_CREATE),
    Operation("GET", rf"{GROUP}/Microsoft\.ContainerRegistry/registries/[^/]+", ("2023-07-01",)),  # Registries_Get
    Operation("PUT", r"/indexes\('[^']+'\)", ("2026-04-01",),
              _model("azure.search.documents.indexes.models", "SearchIndex")),
    Operation("POST", r"/indexes\('[^']+'\)/docs/search\.index", ("2026-04-01",),
              _model(SEARCH_DOCS, "IndexDocumentsBatch"), frozenset({"IndexAction"})),
    Operation("POST", r"/indexes\('[^']+'\)/docs/search\.post\.search", ("2026-04-01",),
              _model(SEARCH_DOCS, "SearchRequest")),
    Operation("GET", r"/indexes\('[^']+'\)/docs/\$count", ("2026-04-01",)),
    Operation("POST", r"/score", (None,), SCORE_REQUEST),
    Operation("POST", r"/+contentsafety/text:analyze", ("2023-10-01",),
              _model("azure.ai.contentsafety.models", "AnalyzeTextOptions")),
)


def check_request(method: str, path: str, api_version: str | None, body: Any) -> None:
    """Raise ContractError unless a contract describes this request and its body keeps it."""
    for operation in OPERATIONS:
        if operation.method == method and re.fullmatch(operation.path, path):
            if api_version not in operation.api_versions:
                raise ContractError(f"{method} {path}: api-version {api_version} is not the contract's "
                                    f"{', '.join(operation.api_versions)}")
            problems = operation.problems(body)
            if problems:
                raise ContractError(f"{method} {path}:\n  " + "\n  ".join(problems))
            return
    raise ContractError(f"No contract describes {method} {path} (api-version {api_version}); add one in "
                        "tests/azure_contracts.py from the service's published specification.")
