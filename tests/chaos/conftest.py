from tests.integration.conftest import (  # noqa: F401 - the same real servers
    account,
    account_addr,
    account_server,
    binding,
    binding_server,
    binding_service,
    settlement,
    settlement_service,
)
