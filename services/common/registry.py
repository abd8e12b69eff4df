"""The partners registry (API.md "Partners registry"), read by every service through this one
module: the designated institutions that may settle online (定点医疗机构/定点零售药店)
and the insurers under agreement for commercial insurance (rule A3). GONGJI_REGISTRY_FILE names
a TOML file; without it the repository's `config/registry.toml` is used. A malformed file raises
RegistryError and the service does not start."""

from __future__ import annotations

import dataclasses
import pathlib
import tomllib
from collections.abc import Mapping
from typing import Any

from services.common.ids import institution_id

SHIPPED = pathlib.Path(__file__).resolve().parents[2] / "config" / "registry.toml"


class RegistryError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Registry:
    institutions: Mapping[str, bool]  # institution id -> designated
    insurers: Mapping[str, bool]  # insurer code -> partner

    def designated(self, institution: str) -> bool:
        return self.institutions.get(institution, False)

    def partner(self, insurer: str) -> bool:
        return self.insurers.get(insurer, False)


def load(path: str = "") -> Registry:
    source = pathlib.Path(path) if path else SHIPPED
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as e:
        raise RegistryError(f"registry file {source}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RegistryError(f"registry file {source}: not valid TOML: {e}") from None
    unknown = set(data) - {"institutions", "insurers"}
    if unknown:
        raise RegistryError(f"registry file {source}: unknown tables {sorted(unknown)}")
    return Registry(
        _flags(data.get("institutions", {}), "designated", source, institution_id),
        _flags(data.get("insurers", {}), "partner", source, lambda code: code),
    )


def _flags(table: Any, flag: str, source: pathlib.Path, check: Any) -> dict[str, bool]:
    if not isinstance(table, dict):
        raise RegistryError(f"registry file {source}: must hold tables")
    out = {}
    for code, entry in table.items():
        where = f"registry file {source} [{code}]"
        if not isinstance(entry, dict) or not isinstance(entry.get(flag), bool):
            raise RegistryError(f"{where}: needs {flag} = true or false")
        if not isinstance(entry.get("name", ""), str) or set(entry) - {"name", flag}:
            raise RegistryError(f"{where}: knows only name and {flag}")
        try:
            check(code)
        except Exception:
            raise RegistryError(f"{where}: not a valid code") from None
        out[code] = entry[flag]
    return out
