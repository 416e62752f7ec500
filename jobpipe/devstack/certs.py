"""A throwaway certificate authority for TLS dev stacks and tests, made with ``openssl``.

One CA signs a server certificate for ``127.0.0.1``/``localhost`` (Redis's
``tls-port``, Kafka's SSL listeners) and a client certificate (Redis asks for
one with ``tls-auth-clients yes``). Keys are unencrypted PKCS#8 PEM, which
Redis, Python's ``ssl``, librdkafka and Kafka's PEM key store all read.
Never use these for anything but a private loopback stack.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jobpipe.devstack.tools import require_tools
from jobpipe.errors import StackError

_DAYS = "30"
_LEAF = ("basicConstraints = critical, CA:FALSE\n"
         "keyUsage = critical, digitalSignature, keyEncipherment\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throwaway CA and the certificates it signed.

    Attributes:
        ca: the CA certificate (the trust anchor of servers and clients).
        server_cert, server_key: for ``127.0.0.1`` and ``localhost``.
        server_bundle: key and certificate in one file (Kafka's PEM key store).
        client_cert, client_key: a client certificate, for mutual TLS.
    """

    ca: Path
    server_cert: Path
    server_key: Path
    server_bundle: Path
    client_cert: Path
    client_key: Path


def _run(openssl: str, *args: str) -> None:
    done = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"openssl {args[0]} failed: {last}")


def _leaf(openssl: str, home: Path, name: str, ca: Path, ca_key: Path, extensions: str) -> None:
    key, csr, ext = home / f"{name}.key", home / f"{name}.csr", home / f"{name}.ext"
    ext.write_text(_LEAF + extensions)
    _run(openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(key))
    _run(openssl, "req", "-new", "-key", str(key), "-subj", f"/CN=jobpipe-{name}",
         "-out", str(csr))
    _run(openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-set_serial", str(secrets.randbits(63)), "-days", _DAYS, "-sha256",
         "-extfile", str(ext), "-out", str(home / f"{name}.pem"))


def make_test_pki(home: Path, tool_path: str | None = None) -> TlsFiles:
    """Create a CA, a server and a client certificate under ``home``.

    Raises:
        StackError: ``openssl`` is missing or failed (one line).
    """
    openssl = require_tools(["openssl"], tool_path)["openssl"]
    home.mkdir(parents=True, exist_ok=True)
    ca, ca_key = home / "ca.pem", home / "ca.key"
    _run(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", _DAYS, "-sha256",
         "-subj", "/CN=jobpipe throwaway test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _leaf(openssl, home, "server", ca, ca_key,
          "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n")
    _leaf(openssl, home, "client", ca, ca_key, "extendedKeyUsage = clientAuth\n")
    bundle = home / "server-bundle.pem"
    bundle.write_text((home / "server.key").read_text() + (home / "server.pem").read_text())
    return TlsFiles(ca=ca, server_cert=home / "server.pem", server_key=home / "server.key",
                    server_bundle=bundle, client_cert=home / "client.pem",
                    client_key=home / "client.key")
