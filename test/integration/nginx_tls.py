"""Debian's nginx as a TLS backend: like nginx_backend (nginx.py), with `ssl` listeners that
serve the localhost certificate of tls_material, optionally asking for client certificates.

    material = make_material()
    with nginx_tls_backend(material) as (port,):
        ...  # https://127.0.0.1:port/ answers 200 "tls-ok", verifiable with material.ca_crt
"""

import contextlib
import os

from nginx import nginx_backend
from tls_material import Material


@contextlib.contextmanager
def nginx_tls_backend(material: Material, location: str = "return 200 'tls-ok';",
                      server: str = "", ports: int = 1, client_ca: str | None = None):
    """nginx on `ports` free ports of 127.0.0.1 with TLS (1.2 and 1.3), one worker, serving
    material.localhost_crt (DNS:localhost, IP:127.0.0.1, signed by material.ca_crt).
    `location` is the body of its `location /` block, `server` more directives for its server
    block. With `client_ca` (a CA file, e.g. material.client_ca_crt) it requires a client
    certificate signed by it: a request without one, or with another, gets nginx's 400 (the
    handshake itself succeeds). Yields the ports."""
    verify = ""
    if client_ca is not None:
        verify = (f"ssl_verify_client on; ssl_client_certificate {os.path.abspath(client_ca)};"
                  " ssl_verify_depth 2;")
    tls = f"""ssl_certificate {material.localhost_crt};
    ssl_certificate_key {material.localhost_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    {verify}
    {server}"""
    with nginx_backend(location, server=tls, ports=ports, listen="ssl") as port_list:
        yield port_list
