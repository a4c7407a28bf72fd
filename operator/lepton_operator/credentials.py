"""Kubernetes credentials from the standard places: in-cluster service account, ``$KUBECONFIG``, then
``~/.kube/config`` (through the official client's loaders, so exec plugins and auth providers work).

kopf's own ``login_via_client`` reads ``$KUBECONFIG`` only when the ``kubernetes`` package is first
imported; this reads it at login time, so a kubeconfig chosen later (tests, ``--kubeconfig``) is honoured.
The result is kopf's ``ConnectionInfo``: kopf uses it for its watches and ``lepton_operator.kube`` for the
operator's own requests.
"""

from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes


def login(*, settings: Any = None, logger: Any = None, kubeconfig: str | None = None, **_: Any) -> kopf.ConnectionInfo:
    """In-cluster first, then the kubeconfig (``kubeconfig`` argument, ``$KUBECONFIG``, ``~/.kube/config``)."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        where = "in-cluster service account"
    except kubernetes.config.ConfigException:
        path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            kubernetes.config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise kopf.LoginError(
                f"no Kubernetes credentials: not in a cluster, and kubeconfig {path!r} is unusable ({exc})"
            ) from exc
        where = f"kubeconfig {path}"
    config = kubernetes.client.Configuration.get_default_copy()
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if logger is not None:
        logger.debug(f"Kubernetes credentials from the {where}: {config.host}")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        trust_env=bool(getattr(getattr(settings, "networking", None), "trust_env", False)),
    )
