"""``aqctl_ionlink_wavemeter``: the wavemeter and laser locks as an ARTIQ controller.

::

    aqctl_ionlink_wavemeter -p 3271 --bind ::1 -d ws8-2345 --channels 1=397_a,2=866_a \\
        --actuators 866_a=wlm:wlm:1:9e7
    aqctl_ionlink_wavemeter -p 3271 --simulation --channels ... --actuators 866_a=dac:dac_a:0:9e7

``--simulation`` stand-alone runs the virtual node (default node file, ``--sim-seed``) on
wall time behind a simulated instrument; in a simulated ARTIQ run the runner creates the
simulated controller in-process on the run's node instead.
"""

from __future__ import annotations

import argparse

import ionlink  # noqa: F401  (serves sipyco where it is not installed)
from drivers._controller import serve
from drivers.wavemeter.config import parse_actuators, parse_channels

DEFAULT_PORT = 3271
DEFAULT_CHANNELS = "1=397_a,2=866_a,3=854_a,4=729_a,5=393_a"


def get_argparser() -> argparse.ArgumentParser:
    from sipyco.common_args import simple_network_args, verbosity_args

    parser = argparse.ArgumentParser(description="ARTIQ controller for a HighFinesse "
                                                 "wavemeter with software laser locks")
    parser.add_argument("-d", "--device", default=None, help="instrument name/serial")
    parser.add_argument("--simulation", action="store_true",
                        help="run the simulated instrument instead of a real one")
    parser.add_argument("--channels", type=parse_channels,
                        default=parse_channels(DEFAULT_CHANNELS),
                        help="switch channel -> laser map, e.g. 1=397_a,2=866_a")
    parser.add_argument("--actuators", type=parse_actuators, default={},
                        help="laser -> KIND:DEVICE:CHANNEL:HZ_PER_UNIT actuator map")
    parser.add_argument("--update-interval", type=float, default=0.1,
                        help="seconds between lock updates (default: %(default)s)")
    parser.add_argument("--sim-noise", type=float, default=0.0,
                        help="simulation: rms read noise in Hz")
    parser.add_argument("--sim-seed", type=int, default=0, help="simulation: random seed")
    simple_network_args(parser, DEFAULT_PORT)
    verbosity_args(parser)
    return parser


def make_driver(args: argparse.Namespace):
    """The driver the controller serves, from parsed arguments."""
    from drivers.wavemeter.driver import WavemeterDriver

    if not args.update_interval > 0:
        raise SystemExit(f"--update-interval must be > 0 s, got {args.update_interval}")
    if args.simulation:
        from drivers.timetagger.simulation import WallClock
        from drivers.wavemeter.simulation import SimulatedWavemeter, attach_actuators, resolver
        from ionlink.node import VirtualNetwork
        from ionlink.node.wiring import example_device_db

        ddb = example_device_db()
        ddb.update({"dac_a": "zotino0", "dac_b": "sat1_zotino0",
                    "zotino0": {"type": "local", "module": "artiq.coredevice.zotino",
                                "class": "Zotino", "arguments": {}},
                    "sat1_zotino0": {"type": "local", "module": "artiq.coredevice.zotino",
                                     "class": "Zotino", "arguments": {}}})
        world = VirtualNetwork(ddb, seed=args.sim_seed)
        resolve = resolver(ddb)
        attach_actuators(world, args.actuators, resolve)
        backend = SimulatedWavemeter(args.channels, lambda: world, WallClock(),
                                     noise_hz=args.sim_noise, seed=args.sim_seed,
                                     serial=f"SIM-{args.device or 'WAVEMETER'}")
    else:
        from drivers.wavemeter.highfinesse import HighFinesseWavemeter

        backend = HighFinesseWavemeter(args.channels, serial=args.device or "")

        def resolve(name: str) -> str:
            return name
    return WavemeterDriver(backend, args.actuators, resolve, args.update_interval)


def main(argv: list[str] | None = None) -> None:
    serve(argv, get_argparser, make_driver, "wavemeter", "ionlink wavemeter")


if __name__ == "__main__":
    main()
