from services.common.channels import target


def test_one_address_is_its_own_target():
    assert target("127.0.0.1:50051") == "127.0.0.1:50051"
    assert target("account:50051") == "account:50051"


def test_a_list_of_replicas_is_one_target_of_ipv4_addresses():
    assert target("127.0.0.1:50051, 127.0.0.1:50061") == "ipv4:127.0.0.1:50051,127.0.0.1:50061"
