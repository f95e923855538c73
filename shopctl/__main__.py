"""shopctl: the commands behind the Makefile (`make up`, `make down`, `make status`,
`make logs`, `make dashboards`, ...). Docker mode when a Docker engine answers, local mode
otherwise; MODE=local|docker decides instead."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from shopctl import docker
from shopctl.progress import StackError, say


def _mode() -> str:
    mode = os.environ.get("MODE", "").strip()
    if mode in ("local", "docker"):
        return mode
    if mode:
        raise StackError(f"MODE={mode!r} is not a mode; use MODE=local or MODE=docker")
    return "docker" if docker.engine_available() else "local"


def _local_logs(service: str | None) -> int:
    from shopctl.local import RUN

    logs = sorted((RUN / "logs").glob(f"{service}*.log" if service else "*.log"))
    if not logs:
        raise StackError(f"no logs for {service or 'the stack'} under {RUN / 'logs'}")
    os.execvp("tail", ["tail", "-n", "20", "-F", *map(str, logs)])


def run(command: str, service: str | None, topic: str | None = None) -> int:
    mode = _mode()
    if command == "dashboards":
        from shopctl.dashboards import print_urls
        from shopctl.topology import Settings

        return print_urls(Settings.load(), mode)
    if mode == "docker":
        say("Docker mode (a Docker engine answers; MODE=local overrides)")
        handlers = {"up": docker.up, "down": docker.down, "status": docker.status}
        if command == "clean":
            return docker.compose("down", "--volumes")
        if command in ("verify", "replay-dlq"):
            raise StackError(f"{command} works on local mode's stack; run it with MODE=local")
        return handlers[command]() if command != "logs" else docker.logs(service)

    from shopctl.local import LocalStack
    from shopctl.status import print_status

    stack = LocalStack()
    if command == "up":
        say("Local mode (no Docker engine; MODE=docker overrides)")
        stack.up()
        say(f"Shopstack is up: gateway http://127.0.0.1:{stack.settings['GATEWAY_PORT']}")
        return 0
    if command == "down":
        stack.down()
        return 0
    if command == "clean":
        stack.clean()
        return 0
    if command == "replay-dlq":
        from shopctl.dlq import replay

        if not topic or not topic.endswith(".dlq"):
            raise StackError("name the dead-letter topic: TOPIC=order-events.dlq")
        replayed, skipped = replay(f"127.0.0.1:{stack.settings['KAFKA_PORT']}", topic)
        say(f"replayed {replayed} events from {topic}; skipped {skipped}")
        return 0
    if command == "verify":
        from shopctl.verify import report

        return report(stack.settings)
    if command == "status":
        return print_status(stack)
    return _local_logs(service)


def main() -> int:
    parser = argparse.ArgumentParser(prog="shopctl", description=__doc__)
    commands = ["up", "down", "status", "logs", "clean", "verify", "replay-dlq", "dashboards"]
    parser.add_argument("command", choices=commands)
    parser.add_argument("--service", help="for logs: only this service's instances")
    parser.add_argument("--topic", help="for replay-dlq: the dead-letter topic")
    args = parser.parse_args()
    try:
        return run(args.command, args.service or None, args.topic or None)
    except StackError as exc:
        print(f"shopctl: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"shopctl: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
