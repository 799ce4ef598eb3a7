"""A private CA and the MQTT broker's server certificate (``hazmon mqtt-tls``).

Vendors' gateways reach the broker over the internet or a government extranet (政务外网), so
the published MQTT port speaks TLS only. Most deployments have no public certificate for the
broker's name; this writes a self-signed CA (``ca.crt``, given to every vendor to verify the
broker; ``ca.key`` never leaves the init volume) and a server certificate signed by it for the
given host names / IP addresses. Run again, it keeps the CA (vendors have it) and renews the
server certificate only when the names changed or it expires within 30 days.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hazmon.errors import ConfigError

__all__ = ["TlsFiles", "write_tls_files"]

_CA_DAYS = 3650
_SERVER_DAYS = 825  # what browsers and most TLS stacks accept for a leaf certificate
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    renewed: bool  # a new server certificate was written


def _san(names: Sequence[str]) -> list[object]:
    from cryptography import x509

    out: list[object] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _write(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def write_tls_files(out_dir: Path, hosts: Sequence[str], *, owner: tuple[int, int] | None = None,
                    now: dt.datetime | None = None) -> TlsFiles:
    """``ca.crt`` + ``ca.key`` (kept), ``server.crt`` + ``server.key`` for ``hosts``; the server
    key is mode 0640 owned by ``owner`` (the broker's user), the CA key 0600 the caller's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = [h.strip() for h in hosts if h.strip()]
    if not names:
        raise ConfigError("mqtt-tls: --host: at least one host name or IP address the vendors connect to")
    now = now or dt.datetime.now(dt.UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key_path = out_dir / "ca.crt", out_dir / "ca.key"
    srv_crt, srv_key = out_dir / "server.crt", out_dir / "server.key"
    pem = serialization.Encoding.PEM
    no_pw = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8

    if ca_crt.is_file() and ca_key_path.is_file():
        ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hazmon MQTT CA"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "区应急指挥中心")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, ca_key.private_bytes(pem, pkcs8, no_pw), 0o600, None)
        _write(ca_crt, ca_cert.public_bytes(pem), 0o644, owner)

    if srv_crt.is_file() and srv_key.is_file():
        current = x509.load_pem_x509_certificate(srv_crt.read_bytes())
        try:
            have = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            same = sorted(map(str, have)) == sorted(map(str, _san(names)))
        except x509.ExtensionNotFound:
            same = False
        if same and current.not_valid_after_utc - now > _RENEW_BEFORE and current.issuer == ca_cert.subject:
            return TlsFiles(ca_crt, srv_crt, srv_key, renewed=False)

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _write(srv_key, key.private_bytes(pem, pkcs8, no_pw), 0o640, owner)
    _write(srv_crt, cert.public_bytes(pem), 0o644, owner)
    return TlsFiles(ca_crt, srv_crt, srv_key, renewed=True)
