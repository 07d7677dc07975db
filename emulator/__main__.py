"""`python -m emulator serve ...` and `python -m emulator generate ...`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from emulator.generator import generate
from emulator.scenario import ScenarioError
from emulator.server import Emulator, default_data_dir

DEFAULT_PORT = 8443


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve Entra ID and Graph over HTTPS on loopback")
    serve.add_argument("--scenario", default="demo", help="'demo' or a scenario YAML path")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    serve.add_argument("--data-dir", type=Path, default=None, help=f"default {default_data_dir()}")
    serve.add_argument("--verbose", action="store_true", help="log every request")

    make = commands.add_parser("generate", help="write a large synthetic scenario as YAML")
    make.add_argument("--service-principals", type=int, required=True)
    make.add_argument("--app-role-assignments", type=int, required=True)
    make.add_argument("--delegated-grants", type=int, required=True)
    make.add_argument("--users", type=int, required=True)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--realistic",
        action="store_true",
        help="managed identities, Microsoft apps, disabled and odd principals, an SSO app",
    )
    make.add_argument("--sso-assignments", type=int, help="with --realistic (default 2000)")
    make.add_argument("--groups", type=int, help="with --realistic (default 50)")
    make.add_argument(
        "--audit-log",
        action="store_true",
        help="grant the portal AuditLog.Read.All (one of the app role assignments)",
    )
    make.add_argument("--out", type=Path, help="default: standard output")

    args = parser.parse_args(argv)
    return _serve(args) if args.command == "serve" else _generate(args)


def _serve(args: argparse.Namespace) -> int:
    try:
        emulator = Emulator(
            args.scenario, data_dir=args.data_dir, port=args.port, verbose=args.verbose
        )
    except ScenarioError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"Entra ID + Graph emulator on {emulator.url} (scenario: {args.scenario})")
    print(f"CA certificate: {emulator.ca_path}")
    print("Point the portal at it with:")
    for name, value in emulator.env().items():
        print(f"export {name}={shlex.quote(value)}")
    sys.stdout.flush()
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _generate(args: argparse.Namespace) -> int:
    try:
        scenario = generate(
            service_principals=args.service_principals,
            app_role_assignments=args.app_role_assignments,
            delegated_grants=args.delegated_grants,
            users=args.users,
            seed=args.seed,
            realistic=args.realistic,
            sso_assignments=args.sso_assignments,
            groups=args.groups,
            audit_log=args.audit_log,
        )
    except ValueError as exc:
        key, problem = exc.args
        print(f"emulator: --{key.replace('_', '-')}: {problem}", file=sys.stderr)
        return 2
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(scenario, Dumper=dumper, sort_keys=False, width=120)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
