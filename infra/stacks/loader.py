"""Turn a stack's configuration into :class:`StackSettings`, or one clear error.

``load_settings`` is pure (a mapping in, settings out) so it is tested without Pulumi;
``settings_from_pulumi`` and ``secrets_from_pulumi`` read the running stack's config.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi.runtime
from pydantic import BaseModel, ValidationError

from infra.stacks.consistency import check_consistency
from infra.stacks.defaults import deep_merge, preset
from infra.stacks.errors import StackConfigError
from infra.stacks.keys import (
    NAMESPACE,
    SECRET_ALERT_WEBHOOK_URL,
    SECRET_GRAFANA_ADMIN_PASSWORD,
    SECRET_KEYS,
    SECRET_REGISTRY_PASSWORD,
)
from infra.stacks.model import StackSettings

MIN_PASSWORD_LENGTH = 8


def load_settings(raw: Mapping[str, Any], stack: str) -> StackSettings:
    """Validate ``raw`` (the stack's ``sovereign-map:`` keys, without the namespace) merged
    over the stack's preset. Raises :class:`StackConfigError` naming the first bad key."""
    merged = deep_merge(preset(stack), raw)
    try:
        settings = StackSettings.model_validate(merged)
    except ValidationError as exc:
        raise _first_error(exc) from None
    check_consistency(settings)
    return settings


def _first_error(exc: ValidationError) -> StackConfigError:
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc: Sequence[Any] = error["loc"]
    key = ".".join(str(part) for part in loc) or "(root)"
    kind = error["type"]
    if kind == "extra_forbidden":
        problem = "unknown key" + _suggestion(loc)
    elif kind == "missing":
        problem = "is required"
        if tuple(loc) == ("nodes",):
            key, problem = "nodes.count", "is required (this stack has no preset to take it from)"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        scalar = isinstance(value, str | int | float | bool)
        shown = f" (got {value!r})" if scalar and repr(value) not in message else ""
        problem = f"{message}{shown}"
    more = len(errors) - 1
    if more:
        problem += f" ({more} more problem{'s' if more > 1 else ''} after this one)"
    return StackConfigError(key, problem)


def _suggestion(loc: Sequence[Any]) -> str:
    """'; did you mean …?' for an unknown key, from the keys valid at that level."""
    model: type[BaseModel] | None = StackSettings
    for part in loc[:-1]:
        if model is None:
            return ""
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        annotation = field.annotation if field else None
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    if model is None:
        return ""
    valid = sorted(f.alias or name for name, f in model.model_fields.items())
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid keys here: {', '.join(valid)})"


# ------------------------------------------------------------------------ from Pulumi
def raw_config(namespace: str = NAMESPACE) -> dict[str, Any]:
    """Every ``<namespace>:<key>`` the running stack sets (secrets excluded), with
    structured values decoded from the JSON the Pulumi CLI hands the program."""
    keys = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    prefix = f"{namespace}:"
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        if key in SECRET_KEYS:
            continue
        value = pulumi.runtime.get_config(full_key)
        raw[key] = _decode(key, value)
    return raw


def _decode(key: str, value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise StackConfigError(key, f"is not valid structured config: {exc}") from None
    return value


def settings_from_pulumi() -> StackSettings:
    """The running stack's settings."""
    return load_settings(raw_config(), pulumi.get_stack())


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, as secret Outputs (never in plain state or logs)."""

    grafana_admin_password: pulumi.Output[str]
    registry_password: pulumi.Output[str] | None
    alert_webhook_url: pulumi.Output[str] | None


def secrets_from_pulumi(settings: StackSettings, namespace: str = NAMESPACE) -> StackSecrets:
    password = _raw_secret(namespace, SECRET_GRAFANA_ADMIN_PASSWORD)
    if password is None:
        raise StackConfigError(
            SECRET_GRAFANA_ADMIN_PASSWORD,
            f"is not set; set it with: pulumi config set --secret "
            f"{namespace}:{SECRET_GRAFANA_ADMIN_PASSWORD} <password>",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StackConfigError(
            SECRET_GRAFANA_ADMIN_PASSWORD, f"must be at least {MIN_PASSWORD_LENGTH} characters"
        )
    registry = _raw_secret(namespace, SECRET_REGISTRY_PASSWORD)
    if settings.image.push and registry is None:
        raise StackConfigError(
            SECRET_REGISTRY_PASSWORD,
            f"is needed to push the image (image.push is true); set it with: "
            f"pulumi config set --secret {namespace}:{SECRET_REGISTRY_PASSWORD} <token>",
        )
    webhook = _raw_secret(namespace, SECRET_ALERT_WEBHOOK_URL)
    if webhook is not None and urlparse(webhook).scheme not in ("http", "https"):
        raise StackConfigError(SECRET_ALERT_WEBHOOK_URL, "must be an http(s) URL")
    return StackSecrets(
        grafana_admin_password=pulumi.Output.secret(password),
        registry_password=pulumi.Output.secret(registry) if registry is not None else None,
        alert_webhook_url=pulumi.Output.secret(webhook) if webhook is not None else None,
    )


def _raw_secret(namespace: str, key: str) -> str | None:
    value = pulumi.runtime.get_config(f"{namespace}:{key}")
    return None if value in (None, "") else str(value)
