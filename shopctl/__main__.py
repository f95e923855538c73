"""shopctl: the commands behind the Makefile (`make up`, `make down`, `make status`,
`make logs`, `make dashboards`, ...). Docker mode when a Docker engine answers, local mode
otherwise; MODE=local|docker decides instead."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable

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
        try:
            stack.up()  # ends with "Shopstack is up: gateway ..." or with what is not up
        except KeyboardInterrupt:
            print(
                "shopctl: interrupted; the builds are stopped and what started keeps running "
                "(`make up` carries on, `make down` stops it)",
                file=sys.stderr,
            )
            return 130
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
        replayed, skipped = replay(stack.topology.kafka_bootstrap(), topic)
        say(f"replayed {replayed} events from {topic}; skipped {skipped}")
        return 0
    if command == "verify":
        from shopctl.verify import report

        return report(stack.settings)
    if command == "status":
        return print_status(stack)
    return _local_logs(service)


def _load(args: argparse.Namespace) -> int:
    from shopctl.load import load
    from shopctl.topology import Settings

    return load(
        Settings.load(),
        args.profile or "smoke",
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        ui=args.command == "load-ui",
        mode=_mode(),
    )


def _flash_sale(args: argparse.Namespace) -> int:
    from shopctl.flash_sale import flash_sale
    from shopctl.topology import Settings

    if _mode() == "docker":
        raise StackError("the flash sale runs against local mode's stack; use MODE=local")
    sale, invariants = flash_sale(
        Settings.load(), buyers=args.buyers or 200, stock=args.stock or 50
    )
    return 0 if not sale.problems and invariants == 0 else 1


def _capacity(args: argparse.Namespace) -> int:
    from shopctl.capacity import capacity
    from shopctl.topology import Settings
    from shopctl.verify import report

    if _mode() == "docker":
        raise StackError("the capacity run works on local mode's stack; use MODE=local")
    best, _ = capacity(Settings.load(), step_seconds=args.duration or 20)
    print("\nmake verify:")
    invariants = report(Settings.load())
    return 0 if best > 0 and invariants == 0 else 1


def _bench(args: argparse.Namespace) -> int:
    from shopctl.bench.run import bench
    from shopctl.topology import Settings

    if _mode() == "docker":
        raise StackError("the benchmarks run against local mode's stack; use MODE=local")
    try:
        return bench(
            Settings.load(),
            duration_s=args.duration or 10,
            checkout=args.checkout != 0,
            step_s=args.step or 10,
        )
    except KeyboardInterrupt:
        print("shopctl: bench interrupted; the servers it started are stopped", file=sys.stderr)
        return 130


def _chaos(args: argparse.Namespace) -> int:
    from shopctl.chaos import run as chaos
    from shopctl.chaos.report import markdown, write
    from shopctl.chaos.target import Target
    from shopctl.local import LocalStack

    if args.command == "chaos" and not args.exp:
        print(chaos.listing())
        print("\nRun one with `make chaos EXP=<experiment>`, all with `make chaos-all`.")
        return 0
    if _mode() == "docker":
        raise StackError("chaos runs against local mode's stack for now; use MODE=local")
    names = list(chaos.experiments()) if args.command == "chaos-all" else [args.exp]
    out = chaos.new_out_dir()
    hold = {"hold_seconds": args.hold} if args.hold else None
    outcomes = chaos.run_all(Target("local", LocalStack()), names, out, configuration=hold)
    print("\n" + markdown(outcomes))
    md, html = write(outcomes, out)
    print(f"Report: {md} and {html}")
    return 0 if all(o.passed for o in outcomes) else 1


def _optional(kind: Callable[[str], float]) -> Callable[[str], float | None]:
    """Make's empty variables arrive as "": unset, not an error."""
    return lambda text: kind(text) if text.strip() else None


def main() -> int:
    parser = argparse.ArgumentParser(prog="shopctl", description=__doc__)
    commands = ["up", "down", "status", "logs", "clean", "verify", "replay-dlq", "dashboards"]
    extra = ["load", "load-ui", "flash-sale", "capacity", "bench", "chaos", "chaos-all"]
    parser.add_argument("command", choices=[*commands, *extra])
    parser.add_argument("--service", help="for logs: only this service's instances")
    parser.add_argument("--topic", help="for replay-dlq: the dead-letter topic")
    parser.add_argument("--profile", help="for load: smoke, steady, spike or soak")
    parser.add_argument("--users", type=_optional(int), help="for load: users at once")
    parser.add_argument("--spawn-rate", type=_optional(float), help="for load: users started/s")
    parser.add_argument(
        "--duration",
        type=_optional(int),
        help="for load: seconds; capacity: a step's; bench: each wrk run's",
    )
    parser.add_argument("--step", type=_optional(float), help="for bench: a checkout step's s")
    parser.add_argument(
        "--checkout", type=_optional(int), help="for bench: 0 skips the checkout capacity"
    )
    parser.add_argument("--buyers", type=_optional(int), help="for flash-sale: buyers")
    parser.add_argument("--stock", type=_optional(int), help="for flash-sale: units on sale")
    parser.add_argument("--exp", help="for chaos: the experiment to run (none: list them)")
    parser.add_argument("--hold", type=_optional(int), help="for chaos: seconds a fault lasts")
    args = parser.parse_args()
    try:
        if args.command in ("load", "load-ui"):
            return _load(args)
        if args.command == "flash-sale":
            return _flash_sale(args)
        if args.command == "capacity":
            return _capacity(args)
        if args.command == "bench":
            return _bench(args)
        if args.command in ("chaos", "chaos-all"):
            return _chaos(args)
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
