"""Per-province policy profiles (rule B13), read by every service through this one module.

The built-in default is the Hunan rules (docs/RULES.md B13) for every province.
GONGJI_POLICY_FILE names a TOML file with a `[default]` table and `[province."NN"]` tables; a
province table overrides only the keys it names. A malformed file raises PolicyError, and the
service does not start.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from typing import Any

from services.common.ids import PROVINCES

RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "grandparent", "grandchild")


class PolicyError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Profile:
    relationships: frozenset[str] = frozenset({"spouse", "parent", "child"})
    max_bindings: int = 10
    same_province: bool = True
    commercial_ratio_percent: int = 40
    # A8: the share of a month's contribution base credited to the personal account (2%).
    allocation_basis_points: int = 200
    # A2: the resident premium the month-end job pays for a beneficiary insured in the province.
    resident_premium_fen: int = 40_000
    # A5: whether a balance moving in from another province can be received here; if not, a
    # move pays it out to the person (TransferAccountRequest.payee).
    accepts_transfers: bool = True
    # N1: the most ACTIVE (or pending) aid quotas one funder holds (the funder's province's).
    max_quotas: int = 10

    def allows(self, relationship: str) -> bool:
        return relationship in self.relationships

    def allocation(self, base_fen: int) -> int:
        """What one contribution month credits to the personal account, rounded down (A8)."""
        return base_fen * self.allocation_basis_points // 10_000

    def commercial_limit(self, available_fen: int) -> int:
        """The most a holder may spend on commercial insurance now, rounded down (rule A3)."""
        return available_fen * self.commercial_ratio_percent // 100


@dataclasses.dataclass(frozen=True)
class Policy:
    default: Profile = Profile()
    provinces: Mapping[str, Profile] = dataclasses.field(default_factory=dict)

    def for_region(self, region_code: str) -> Profile:
        return self.provinces.get(region_code[:2], self.default)


def load(path: str) -> Policy:
    """The policy in force: built-in when `path` is empty, else the file's."""
    if not path:
        return Policy()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise PolicyError(f"policy file {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"policy file {path}: not valid TOML: {e}") from None
    return parse(data, path)


def parse(data: Mapping[str, Any], source: str = "policy") -> Policy:
    unknown = set(data) - {"default", "province"}
    if unknown:
        raise PolicyError(f"{source}: unknown tables {sorted(unknown)}")
    default = _profile(data.get("default", {}), Profile(), f"{source} [default]")
    provinces: dict[str, Profile] = {}
    tables = data.get("province", {})
    if not isinstance(tables, dict):
        raise PolicyError(f"{source}: [province] must be a table of province tables")
    for code, table in tables.items():
        where = f'{source} [province."{code}"]'
        if not (len(code) == 2 and code.isascii() and code.isdigit() and int(code) in PROVINCES):
            raise PolicyError(f"{where}: not a province code")
        provinces[code] = _profile(table, default, where)
    return Policy(default, provinces)


def _profile(table: Any, base: Profile, where: str) -> Profile:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: must be a table")
    fields = {f.name for f in dataclasses.fields(Profile)}
    unknown = set(table) - fields
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {}
    if "relationships" in table:
        values["relationships"] = _relationships(table["relationships"], where)
    for key, low, high in (
        ("max_bindings", 1, 100),
        ("commercial_ratio_percent", 0, 100),
        ("allocation_basis_points", 0, 10_000),
        ("resident_premium_fen", 1, 10_000_000),
        ("max_quotas", 1, 100),
    ):
        if key in table:
            value = table[key]
            if type(value) is not int or not low <= value <= high:
                raise PolicyError(f"{where}: {key} must be a whole number {low}..{high}")
            values[key] = value
    for key in ("same_province", "accepts_transfers"):
        if key in table:
            if not isinstance(table[key], bool):
                raise PolicyError(f"{where}: {key} must be true or false")
            values[key] = table[key]
    return dataclasses.replace(base, **values)


def _relationships(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{where}: relationships must be a non-empty list")
    names = set()
    for item in value:
        name = str(item).lower().removeprefix("relationship_")
        if name not in RELATIONSHIPS:
            raise PolicyError(f"{where}: unknown relationship {item!r}; known: {RELATIONSHIPS}")
        names.add(name)
    return frozenset(names)
