"""Run the HubSpot emulator by hand:

    python -m crmlink.testing.hubspot_emulator --port 8090 --seed-size 200
"""

from __future__ import annotations

import argparse

from crmlink.testing.emulation import serve_until_interrupted

from .emulator import HubSpotEmulator
from .limits import RateLimits
from .seed import seed


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crmlink.testing.hubspot_emulator",
                                     description="HubSpot CRM API emulator on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed-size", type=int, default=100,
                        help="generated contacts (companies, deals, engagements scale with it)")
    parser.add_argument("--seed", type=int, default=42, help="random seed for generated data")
    parser.add_argument("--burst", type=int, default=100, help="requests per 10 s (Pro: 190)")
    parser.add_argument("--daily", type=int, default=250_000, help="requests per day")
    parser.add_argument("--no-rate-limits", action="store_true", help="never answer 429")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    limits = RateLimits(enabled=not args.no_rate_limits, burst=args.burst, daily=args.daily)
    emu = HubSpotEmulator(host=args.host, port=args.port, rate_limits=limits, delay=args.delay)
    counts = seed(emu, args.seed_size, seed=args.seed) if args.seed_size > 0 else {}
    url = emu.start()
    print(f"HubSpot emulator listening on {url}", flush=True)
    print(f"access token:  {emu.token}")
    print(f"oauth client_id={emu.client_id} client_secret={emu.client_secret} "
          f"refresh_token={emu.refresh_token}")
    print("seeded: " + ", ".join(f"{k}={len(v)}" for k, v in counts.items()), flush=True)
    serve_until_interrupted(emu)


if __name__ == "__main__":
    main()
