"""``aqctl_ionlink_timetagger``: the Time Tagger as an ARTIQ controller.

::

    aqctl_ionlink_timetagger -p 3270 --bind ::1 -d SERIAL --channels 1=det_station_0,...
    aqctl_ionlink_timetagger -p 3270 --simulation --sim-rate 1e5 --channels 1=a,2=b

``--simulation`` runs the simulated tagger stand-alone on wall time; its inputs see Poisson
clicks at ``--sim-rate`` Hz per channel (in a simulated ARTIQ run the runner instead
creates it in-process on the virtual node's detector clicks).
"""

from __future__ import annotations

import argparse

import ionlink  # noqa: F401  (serves sipyco where it is not installed)
from drivers._controller import serve
from drivers.timetagger.channels import parse_channel_map

DEFAULT_PORT = 3270


def get_argparser() -> argparse.ArgumentParser:
    from sipyco.common_args import simple_network_args, verbosity_args

    parser = argparse.ArgumentParser(description="ARTIQ controller for a Swabian Time Tagger")
    parser.add_argument("-d", "--device", default=None,
                        help="serial number of the time tagger (default: the first found)")
    parser.add_argument("--simulation", action="store_true",
                        help="run the simulated tagger instead of a real device")
    parser.add_argument("--channels", type=parse_channel_map,
                        default=parse_channel_map("1=det_station_0,2=det_station_1,"
                                                  "3=pmt_a,4=pmt_b"),
                        help="tagger channel -> detector TTL device map, "
                             "e.g. 1=det_station_0,2=det_station_1")
    parser.add_argument("--sim-rate", type=float, default=1000.0,
                        help="stand-alone simulation: click rate per channel in Hz")
    parser.add_argument("--sim-seed", type=int, default=0,
                        help="stand-alone simulation: random seed")
    simple_network_args(parser, DEFAULT_PORT)
    verbosity_args(parser)
    return parser


def make_driver(args: argparse.Namespace):
    """The driver the controller serves, from parsed arguments."""
    from drivers.timetagger.driver import TimeTaggerDriver

    if args.simulation:
        from drivers.timetagger.simulation import SimulatedTagger, WallClock
        from ionlink.sim.world import PoissonInputs

        if not args.sim_rate >= 0:
            raise SystemExit(f"--sim-rate must be >= 0 Hz, got {args.sim_rate}")
        world = PoissonInputs({name: args.sim_rate for name in args.channels.values()},
                              seed=args.sim_seed)
        backend = SimulatedTagger(dict(args.channels), lambda: world, WallClock(),
                                  serial=f"SIM-{args.device or 'TAGGER'}")
    else:
        from drivers.timetagger.swabian import SwabianTagger

        backend = SwabianTagger(args.device or "")
    return TimeTaggerDriver(backend, args.channels)


def main(argv: list[str] | None = None) -> None:
    serve(argv, get_argparser, make_driver, "timetagger", "ionlink time tagger")


if __name__ == "__main__":
    main()
