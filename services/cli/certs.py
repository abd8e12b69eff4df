"""`gongji certs`: a local CA and a certificate for each service and for callers (mutual TLS).

Keys are EC P-256 and readable by their owner only. Each service's certificate names the
service (its host name in docker-compose), `localhost` and 127.0.0.1, plus any `--host`; it
serves TLS and identifies the service to its peers. `client` is for callers (the CLI, tests).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ("account", "binding", "settlement", "client")
CA_DAYS, LEAF_DAYS = 3650, 825


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gongji"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: pathlib.Path, data: bytes, private: bool) -> None:
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
             days: int) -> x509.CertificateBuilder:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def make(out: pathlib.Path, hosts: tuple[str, ...] = (), names: tuple[str, ...] = NAMES) -> None:
    """Write ca.pem, ca.key and <name>.pem, <name>.key for each name into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("gongji local CA")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(out / "ca.pem", ca.public_bytes(serialization.Encoding.PEM), private=False)
    _write(out / "ca.key", _key_pem(ca_key), private=True)
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        sans: list[x509.GeneralName] = []
        if name != "client":
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            sans = [x509.DNSName(h) for h in (name, "localhost", *hosts) if not _ip(h)]
            sans += [x509.IPAddress(ipaddress.ip_address(h)) for h in ("127.0.0.1", *hosts)
                     if _ip(h)]  # fmt: skip
        builder = (
            _builder(_name(name), ca_name, key.public_key(), LEAF_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(out / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
        _write(out / f"{name}.key", _key_pem(key), private=True)


def _ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
