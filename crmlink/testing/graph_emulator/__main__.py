"""Run the Graph emulator by hand:

    python -m crmlink.testing.graph_emulator --port 8443 --messages 500
"""

from __future__ import annotations

import argparse

from crmlink.testing.emulation import serve_until_interrupted

from .emulator import GraphEmulator
from .faults import Limits
from .seed import seed


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crmlink.testing.graph_emulator",
                                     description="Microsoft Graph (mail, calendar, token) "
                                                 "emulator on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--no-tls", action="store_true",
                        help="serve plain http (msal refuses it; for curl and requests only)")
    parser.add_argument("--messages", type=int, default=200, help="generated messages")
    parser.add_argument("--mailboxes", type=int, default=3, help="generated mailboxes")
    parser.add_argument("--seed", type=int, default=42, help="random seed for generated data")
    parser.add_argument("--no-limits", action="store_true",
                        help="never answer 429 for the per-mailbox request limit")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    emu = GraphEmulator(tls=not args.no_tls, host=args.host, port=args.port,
                        limits=Limits(enabled=not args.no_limits))
    emu.delay = args.delay
    counts = seed(emu, args.messages, mailboxes=args.mailboxes, seed=args.seed)
    emu.start()
    print(f"Graph emulator listening on {emu.url}", flush=True)
    print(f"base url:      {emu.base_url}")
    print(f"authority url: {emu.url}   (tenant {emu.tenant_id})")
    print(f"client id:     {emu.client_id}")
    print(f"client secret: {emu.client_secret}")
    if emu.ca_path:
        print(f"CA bundle:     {emu.ca_path}   (export REQUESTS_CA_BUNDLE={emu.ca_path})")
    print("mailboxes:     " + ", ".join(b.address for b in emu.directory.mailboxes.values()))
    print("seeded: " + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    serve_until_interrupted(emu)


if __name__ == "__main__":
    main()
