"""HTTPS for phones: a self-signed certificate covering this machine's LAN addresses.

Phones allow camera access only on a secure origin, so `--https` makes one (kept in the
state directory and renewed when the addresses change) unless `--cert/--key` are given.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
from pathlib import Path

logger = logging.getLogger(__name__)


def lan_addresses() -> list[str]:
    """IPv4 addresses other devices can reach us on, the default route's first."""
    addresses: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: picks the default route
            addresses.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        import ifaddr  # installed with aiortc (aioice)

        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                    addresses.append(ip.ip)
    except Exception:  # noqa: BLE001 - best effort: the default route is enough
        pass
    return list(dict.fromkeys(a for a in addresses if not a.startswith("169.254.")))


def _covers(cert_path: Path, names: list[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    have |= set(san.get_values_for_type(x509.DNSName))
    not_after = cert.not_valid_after_utc
    fresh = not_after > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    return fresh and set(names) <= have


def ensure_self_signed(state_dir: Path) -> tuple[Path, Path]:
    """Return (cert, key) paths, creating or renewing them when needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    state_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = state_dir / "komi-rtc.crt", state_dir / "komi-rtc.key"
    hostname = socket.gethostname()
    names = ["localhost", hostname, "127.0.0.1", *lan_addresses()]
    if cert_path.exists() and key_path.exists() and _covers(cert_path, names):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"KOMI RTC on {hostname}")])
    alt_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    logger.info("created a self-signed certificate for %s in %s", ", ".join(names), cert_path)
    return cert_path, key_path


def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def terminal_qr(url: str) -> str:
    """A QR code of `url` drawn with block characters, for a phone to scan off the screen."""
    import io

    import qrcode

    code = qrcode.QRCode(border=2)
    code.add_data(url)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def svg_qr(url: str) -> str:
    """A QR code of `url` as an SVG document, for a page to show."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return str(image.to_string(encoding="unicode"))
