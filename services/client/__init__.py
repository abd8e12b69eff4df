"""The Python client of gongji: `Client`, `GongjiError`, and the person-id helpers callers need
(the check character of a resident ID number, and masking for logs)."""

from services.client.client import Client, Service
from services.client.errors import GongjiError
from services.common.ids import check_character, make_person_id, mask

__all__ = ["Client", "GongjiError", "Service", "check_character", "make_person_id", "mask"]
