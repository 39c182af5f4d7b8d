"""Key generation for platform consoles."""

from __future__ import annotations

import base64
import os
from pathlib import Path

PRIVATE_NAME = "app_private_key.pem"
PUBLIC_NAME = "app_public_key.pem"


def write_alipay_keys(out: Path, *, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new RSA-2048 pair (PKCS#8 private, 0600; SPKI public) into ``out``.

    Returns both paths and the public key as the one line of base64 (SPKI DER, no PEM
    armour) that the Alipay console asks for.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if not force:
        for p in (private_path, public_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass --force to replace it")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path, base64.b64encode(public_der).decode()
