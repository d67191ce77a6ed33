"""Back ends of the `ionlink analyze`, `ionlink keyrate` and `ionlink budget` subcommands.

`register(subparsers)` adds the three subparsers; each sets `func(args) -> int` (exit code:
0 success, 2 bad input or unreadable data; errors are printed as one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from analysis import linkbudget, qkd
from analysis.errors import AnalysisError

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def register(subparsers) -> None:
    """Add the `analyze`, `keyrate` and `budget` subcommands to an argparse subparsers."""
    _register_analyze(subparsers)
    _register_keyrate(subparsers)
    _register_budget(subparsers)


def _fail(command: str, message: str) -> int:
    print(f"ionlink {command}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value):
    """Replace non-finite floats by None so the JSON output is standard."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _print_json(data) -> None:
    print(json.dumps(_clean(data), indent=2, default=_json_default))


def _format(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) <= 4:
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return str(value)


def _print_text(data: dict, indent: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_text(value, indent + "  ")
        else:
            print(f"{indent}{key} = {_format(value)}")


def _print_fit(section: str, fit: dict) -> None:
    print(f"{section}: {fit['model']} fit, good={fit['good']} ({fit['reason']}), "
          f"reduced chi2 {_format(fit['chi2_reduced'])} ({fit['dof']} dof)")
    for name, value in fit["values"].items():
        print(f"  {name} = {_format(value)} +- {_format(fit['errors'][name])}")
    for name, entry in fit["derived"].items():
        print(f"  {name} = {_format(entry['value'])} +- {_format(entry['error'])}")


def _print_sections(header: str, sections: dict) -> None:
    print(header)
    for section, numbers in sections.items():
        if "error" in numbers:
            print(f"{section}: cannot analyse: {numbers['error']}")
        elif section.startswith("calib."):
            _print_fit(section, numbers)
        else:
            print(f"{section}:")
            for key, value in numbers.items():
                if "_stderr" in key or key in ("rho_real", "rho_imag"):
                    continue
                stderr = numbers.get(f"{key}_stderr")
                for unit in ("_hz", "_s"):  # x_hz +- x_stderr_hz, x_s +- x_stderr_s
                    if stderr is None and key.endswith(unit):
                        stderr = numbers.get(key[:-len(unit)] + "_stderr" + unit)
                if isinstance(value, dict):  # e.g. fidelities by Bell state, errors alike
                    errors = stderr if isinstance(stderr, dict) else {}
                    print(f"  {key}: " + ", ".join(
                        f"{k} = {_format(v)}" + (f" +- {_format(errors[k])}" if k in errors
                                                 else "") for k, v in value.items()))
                    continue
                suffix = f" +- {_format(stderr)}" if stderr is not None else ""
                print(f"  {key} = {_format(value)}{suffix}")


# ----------------------------------------------------------------------------- analyze

def _register_analyze(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze", help="analyse a results file (or rid) or a Photon-HDF5 time-tag file",
        description="Recognise the datasets of an ARTIQ results file (see analysis.schemas) "
                    "or a Photon-HDF5 time-tag file and print the numbers it yields.")
    parser.add_argument("target", metavar="FILE_OR_RID",
                        help="path of an HDF5 file, or an integer rid")
    parser.add_argument("--results-root", default="results", type=Path,
                        help="results directory searched for a rid (default ./results)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    parser.add_argument("--window-s", type=float, default=1e-9,
                        help="time tags: coincidence half-window in seconds (default 1e-9)")
    parser.set_defaults(func=run_analyze)


def _is_photon_hdf5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "photon_data/timestamps" in f
    except OSError:
        return False


def run_analyze(args) -> int:
    """`ionlink analyze` back end."""
    from analysis import analyze, results

    target = str(args.target)
    try:
        if target.isdigit() and not Path(target).exists():
            opened = results.load_rid(args.results_root, int(target))
        else:
            path = Path(target)
            if path.is_dir():
                return _fail("analyze", f"{path} is a directory: give a file, or a rid "
                                        f"with --results-root {path}")
            if not path.is_file():
                return _fail("analyze", f"no such file: {path}")
            if _is_photon_hdf5(path):
                sections = analyze.analyze_timetags(path, args.window_s)
                plots = (analyze.write_timetag_plots(path, args.plots)
                         if args.plots is not None else [])
                if args.json:
                    _print_json({"file": str(path), "kind": "photon-hdf5", **sections,
                                 "plots": [str(p) for p in plots]})
                else:
                    _print_sections(f"{path}: Photon-HDF5 time tags", {"timetags": {
                        k: v for k, v in sections["timetags"].items()
                        if k not in ("channels", "pairs")}})
                    for channel, numbers in sections["timetags"]["channels"].items():
                        print(f"  detector {channel}: {numbers['tags']} tags, rate "
                              f"{_format(numbers['rate_hz'])} +- "
                              f"{_format(numbers['rate_stderr_hz'])} Hz")
                    for pair, numbers in sections["timetags"]["pairs"].items():
                        line = (f"  detectors {pair}: {numbers['coincidences']} coincidences, "
                                f"{_format(numbers['accidental_expected'])} accidental")
                        if "ratio" in numbers:
                            line += (f", ratio {_format(numbers['ratio'])} +- "
                                     f"{_format(numbers['ratio_stderr'])}")
                        print(line)
                    for plot in plots:
                        print(f"plot: {plot}")
                return EXIT_OK
            opened = results.load(path)
        with opened:
            sections = analyze.analyze_results(opened)
            plots = (analyze.write_plots(opened, sections, args.plots)
                     if args.plots is not None else [])
            header = {"file": str(opened.path), "rid": opened.rid,
                      "class_name": opened.class_name}
    except (AnalysisError, OSError, ValueError) as error:
        return _fail("analyze", str(error).splitlines()[0] if str(error) else repr(error))
    if not sections:
        return _fail("analyze", f"{header['file']}: no recognised datasets (see "
                                "analysis.schemas for the names analysed)")
    if args.json:
        _print_json({**header, "sections": sections, "plots": [str(p) for p in plots]})
    else:
        _print_sections(f"{header['file']} (rid {header['rid']}, {header['class_name']})",
                        sections)
        for path in plots:
            print(f"plot: {path}")
    return EXIT_OK


# ----------------------------------------------------------------------------- keyrate

def _register_keyrate(subparsers) -> None:
    parser = subparsers.add_parser(
        "keyrate", help="DI-QKD key rate from CHSH value and QBER",
        description="Asymptotic key rate (Pironio et al. 2009) and, with --rounds, the "
                    "finite-size key length of the CHSH DI-QKD protocol by entropy "
                    "accumulation (Nadlinger et al. 2022, Suppl. Prop. 2, or Arnon-Friedman "
                    "et al. 2018). S and Q are the design values the protocol's abort "
                    "threshold and syndrome length are set from.")
    parser.add_argument("--chsh", type=float, required=True, help="CHSH value S")
    parser.add_argument("--qber", type=float, required=True, help="quantum bit error rate Q")
    parser.add_argument("--rounds", type=int, help="number of rounds n (finite-size key)")
    parser.add_argument("--test-fraction", type=float,
                        help="test-round probability gamma (default: optimised)")
    parser.add_argument("--eps-sound", type=float, default=1e-10,
                        help="total soundness error (default 1e-10)")
    parser.add_argument("--sigmas", type=float, default=3.0,
                        help="abort-threshold allowance in standard deviations of the lost "
                             "test-round count (default 3, completeness error <~ 1 %%)")
    parser.add_argument("--syndrome-bits", type=int,
                        help="error-correction syndrome length m (default: Suppl. Eq. (23))")
    parser.add_argument("--method", choices=qkd.FINITE_KEY_METHODS, default="nadlinger2022",
                        help="finite-size bound (default nadlinger2022)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_keyrate)


def run_keyrate(args) -> int:
    """`ionlink keyrate` back end."""
    try:
        out: dict = {"chsh": args.chsh, "qber": args.qber,
                     "asymptotic_key_rate": qkd.asymptotic_key_rate(args.chsh, args.qber)}
        if args.rounds is not None:
            kwargs = dict(eps_sound=args.eps_sound, sigmas=args.sigmas,
                          syndrome_bits=args.syndrome_bits, method=args.method)
            if args.test_fraction is None:
                finite = qkd.best_test_fraction(args.rounds, args.chsh, args.qber, **kwargs)
            else:
                finite = qkd.finite_key_length(args.rounds, args.test_fraction, args.chsh,
                                               args.qber, **kwargs)
            out["finite"] = finite.to_dict()
    except ValueError as error:
        return _fail("keyrate", str(error))
    if args.json:
        _print_json(out)
    else:
        print(f"asymptotic key rate = {out['asymptotic_key_rate']:.6g} bits per key round")
        if "finite" in out:
            f = out["finite"]
            print(f"finite key length = {f['key_length']} bits from {f['n_rounds']} rounds "
                  f"({f['method']}; test fraction {f['test_fraction']:.4g}, abort below "
                  f"winning probability {f['omega_threshold']:.6f}, syndrome "
                  f"{f['syndrome_length']} bits, min-entropy {f['min_entropy_bits']:.6g} bits)")
    return EXIT_OK


# ----------------------------------------------------------------------------- budget

def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _register_budget(subparsers) -> None:
    parser = subparsers.add_parser(
        "budget", help="link budget and repeater-chain estimate",
        description="Per-attempt success probability, herald rate, generation time, "
                    "rate x T2 and fidelity of a two-node link (analysis.linkbudget).")
    for field in dataclasses.fields(linkbudget.LinkParameters):
        default = field.default
        if field.name == "protocol":
            parser.add_argument(_option(field.name), choices=linkbudget.PROTOCOLS,
                                default=default, help=f"(default {default})")
        else:
            parser.add_argument(_option(field.name), type=type(default), default=default,
                                help=f"(default {default})")
    parser.add_argument("--chain-links", type=int, default=1,
                        help="also estimate a chain of this many links over --length-km")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_budget)


def run_budget(args) -> int:
    """`ionlink budget` back end."""
    try:
        params = linkbudget.LinkParameters(**{
            f.name: getattr(args, f.name) for f in dataclasses.fields(linkbudget.LinkParameters)})
        out = {"parameters": dataclasses.asdict(params),
               "link": linkbudget.link_budget(params).to_dict()}
        if args.chain_links > 1:
            out["chain"] = linkbudget.chain_estimate(params, params.length_km,
                                                     args.chain_links).to_dict()
            out["direct_rate_hz"] = linkbudget.direct_transmission_rate(params, params.length_km)
    except ValueError as error:
        return _fail("budget", str(error))
    if args.json:
        _print_json(out)
    else:
        _print_text({"link": out["link"]})
        if "chain" in out:
            _print_text({"chain": out["chain"], "direct_rate_hz": out["direct_rate_hz"]})
    return EXIT_OK


def main(argv=None) -> int:
    """Stand-alone entry point (the lead wires `register` into `ionlink`)."""
    parser = argparse.ArgumentParser(prog="ionlink")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
