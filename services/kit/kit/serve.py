"""`python -m kit.serve`: run the service named by SERVICE_NAME under uvicorn, the same
command in both modes. SIGTERM makes uvicorn stop accepting, finish in-flight requests
(up to SHUTDOWN_GRACE_SECONDS) and then run the app's shutdown, which closes the pools."""

from __future__ import annotations

import uvicorn

from kit.settings import ServiceSettings


def main() -> None:
    settings = ServiceSettings()  # type: ignore[call-arg]  # SERVICE_NAME comes from the environment
    uvicorn.run(
        f"{settings.service_name}.main:app",
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


if __name__ == "__main__":
    main()
