"""Run the emulator by hand: ``python -m crmlink.testing.salesforce_emulator --port 8443``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .emulator import DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET, SalesforceEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crmlink.testing.salesforce_emulator",
                                     description="Salesforce REST API emulator on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--tls", action="store_true", help="serve https with a trustme test CA")
    parser.add_argument("--seed", action="append", default=[], metavar="DIR",
                        help="sObject Tree directory (data-plan.json) or file; repeatable")
    parser.add_argument("--batch-size", type=int, default=2000,
                        help="default query page size (Sforce-Query-Options overrides)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emu = SalesforceEmulator(tls=args.tls, host=args.host, port=args.port,
                             default_batch_size=args.batch_size)
    for item in args.seed:
        path = Path(item)
        counts = emu.seed_plan(path) if path.is_dir() else {"records": len(emu.seed_tree_json(path))}
        print(f"seeded {path}: {counts}")
    url = emu.start()
    user = next(iter(emu.users.values()))
    print(f"instance_url:   {url}")
    print(f"session_id:     {emu.session_id}")
    print(f"username:       {user.username}")
    print(f"password:       {user.password}")
    print(f"security_token: {user.security_token}")
    print(f"consumer_key:   {DEFAULT_CONSUMER_KEY}")
    print(f"consumer_secret: {DEFAULT_CONSUMER_SECRET}")
    if emu.ca_path:
        print(f"ca_path:        {emu.ca_path}")
    print("Ctrl-C to stop", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
