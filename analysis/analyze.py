"""Recognise what a data file holds (see analysis.schemas) and compute its numbers.

`analyze_results(results)` and `analyze_timetags(path)` return nested dicts of plain Python
values (JSON-ready): one section per recognised kind of data. `write_plots(sections, data,
directory)` draws PNG files with matplotlib's Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import bell, fit_models, fits, qkd, readout, schemas, stats, tomography
from analysis.errors import AnalysisError


def _array(datasets, key: str) -> np.ndarray:
    return np.asarray(datasets[key])


def analyze_calibration(datasets, name: str, fields: dict[str, str]) -> dict:
    """Fit one calib.<name> scan; the model comes from calib.<name>.model or the name."""
    missing = [f"calib.{name}.{f}" for f in schemas.CALIBRATION_REQUIRED if f not in fields]
    if missing:
        raise AnalysisError(f"calibration {name!r} lacks {', '.join(missing)}")
    model = str(datasets[fields["model"]]) if "model" in fields else name
    if model not in fit_models.MODELS:
        raise AnalysisError(f"calibration {name!r}: unknown fit model {model!r} (set "
                            f"calib.{name}.model to one of {sorted(fit_models.MODELS)})")
    x = _array(datasets, fields["x"])
    y = _array(datasets, fields["y"])
    n_shots = _array(datasets, fields["n_shots"]) if "n_shots" in fields else None
    sigma = _array(datasets, fields["sigma"]) if "sigma" in fields else None
    result = fits.fit(model, x, y, sigma=sigma, n_shots=n_shots)
    out = result.to_dict()
    out["unit_x"] = datasets.metadata(fields["x"]).get("unit") if hasattr(
        datasets, "metadata") else None
    return out


def analyze_readout(datasets) -> dict:
    """Optimal threshold (bright: counts > threshold) and readout errors."""
    bright = _array(datasets, schemas.READOUT_BRIGHT)
    dark = _array(datasets, schemas.READOUT_DARK)
    t = readout.optimize_threshold(bright, dark)
    nb, nd = bright.size, dark.size
    # mean of two independent binomial error rates (evaluated at the chosen threshold)
    fidelity_stderr = 0.5 * np.sqrt(t.bright_error * (1 - t.bright_error) / nb
                                    + t.dark_error * (1 - t.dark_error) / nd)
    return {"threshold": t.threshold, "convention": "bright if counts > threshold",
            "fidelity": t.fidelity, "fidelity_stderr": float(fidelity_stderr),
            "bright_error": t.bright_error,
            "bright_error_interval": stats.wilson_interval(round(t.bright_error * nb), nb),
            "dark_error": t.dark_error,
            "dark_error_interval": stats.wilson_interval(round(t.dark_error * nd), nd),
            "bright_shots": int(nb), "dark_shots": int(nd)}


def analyze_heralding(datasets) -> dict:
    """Success probability, herald rate, generation time and rate x T2 of a heralding run."""
    attempts = int(datasets[schemas.HERALDING_ATTEMPTS])
    heralds = int(datasets[schemas.HERALDING_HERALDS])
    duration = float(datasets[schemas.HERALDING_DURATION])
    if attempts < 1 or not 0 <= heralds <= attempts:
        raise AnalysisError(f"heralding: need attempts >= 1 and 0 <= heralds <= attempts, got "
                            f"attempts={attempts}, heralds={heralds}")
    if not duration > 0:
        raise AnalysisError(f"heralding.duration_s must be > 0, got {duration}")
    p = heralds / attempts
    low, high = stats.wilson_interval(heralds, attempts)
    rate = heralds / duration
    out = {"attempts": attempts, "heralds": heralds, "duration_s": duration,
           "success_probability": p, "success_probability_interval": [low, high],
           "attempt_rate_hz": attempts / duration,
           "herald_rate_hz": rate, "herald_rate_stderr_hz": np.sqrt(heralds) / duration,
           "mean_generation_time_s": duration / heralds if heralds else None,
           # heralds of a Poisson process in a fixed time: relative error 1 / sqrt(heralds)
           "mean_generation_time_stderr_s": (duration / heralds**1.5 if heralds else None)}
    if schemas.HERALDING_FIDELITY in datasets:
        out["fidelity"] = float(datasets[schemas.HERALDING_FIDELITY])
        if schemas.HERALDING_FIDELITY_STDERR in datasets:
            out["fidelity_stderr"] = float(datasets[schemas.HERALDING_FIDELITY_STDERR])
    if schemas.HERALDING_T2 in datasets:
        t2 = float(datasets[schemas.HERALDING_T2])
        out["memory_t2_s"] = t2
        out["rate_over_decoherence"] = rate * t2
        out["rate_over_decoherence_stderr"] = np.sqrt(heralds) / duration * t2
    if schemas.HERALDING_TIMES in datasets:
        ref = (float(datasets[schemas.HERALDING_REF_PERIOD])
               if schemas.HERALDING_REF_PERIOD in datasets else schemas.DEFAULT_REF_PERIOD_S)
        times = np.sort(_array(datasets, schemas.HERALDING_TIMES).astype(np.int64)) * ref
        gaps = np.diff(times)
        out["ref_period_s"] = ref
        if gaps.size:
            out["inter_herald_mean_s"] = float(np.mean(gaps))
            out["inter_herald_mean_stderr_s"] = float(
                np.std(gaps, ddof=1) / np.sqrt(gaps.size)) if gaps.size > 1 else None
    return out


def analyze_bell(datasets) -> dict:
    """CHSH S from test rounds, QBER from key rounds, the asymptotic DI-QKD rate and the
    finite-size key of these rounds (analysis.qkd.finite_key_length, designed for the
    observed S and Q; the surplus, negative while there is no key, says how far off)."""
    x, y, a, b = (_array(datasets, k) for k in schemas.BELL_ROUNDS)
    sizes = {k: v.size for k, v in zip(schemas.BELL_ROUNDS, (x, y, a, b), strict=True)}
    if len(set(sizes.values())) != 1:
        raise AnalysisError(f"bell rounds have unequal lengths: {sizes}")
    if schemas.BELL_IS_TEST in datasets:
        test = _array(datasets, schemas.BELL_IS_TEST).astype(bool)
        if test.size != x.size:
            raise AnalysisError(f"bell.is_test has {test.size} entries, rounds have {x.size}")
    else:
        test = np.ones(x.size, dtype=bool)
    try:
        result = bell.chsh_from_rounds(x[test], y[test], a[test], b[test])
    except ValueError as error:
        raise AnalysisError(f"bell: {error}") from error
    out = {"rounds": int(x.size), "test_rounds": int(np.count_nonzero(test)),
           **result.to_dict()}
    key = ~test
    if np.any(key):
        errors = int(np.count_nonzero(a[key] != b[key]))
        n_key = int(np.count_nonzero(key))
        out["key_rounds"] = n_key
        out["qber"] = errors / n_key
        out["qber_interval"] = list(stats.wilson_interval(errors, n_key))
        s = min(max(result.value, 0.0), qkd.TSIRELSON)
        if out["qber"] <= 0.5:
            out["asymptotic_key_rate"] = qkd.asymptotic_key_rate(s, out["qber"])
            if np.any(test):
                # the key these rounds would give under the protocol of Nadlinger et al.
                # (2022) designed for the observed S and Q (eps_sound 1e-10)
                finite = qkd.finite_key_length(int(x.size), float(np.mean(test)), s,
                                               out["qber"])
                out["finite_key_bits"] = finite.key_length
                out["finite_key_surplus_bits"] = finite.surplus_bits
        else:  # the protocol's key is a = b: anti-correlated rounds give no key
            out["asymptotic_key_rate"] = 0.0
            out["note"] = ("QBER > 1/2: key rounds anti-correlated where the protocol expects "
                           "a = b (uncalibrated link phase?)")
    s_abs = min(abs(result.value), bell.TSIRELSON)
    out["fidelity_lower_bound"] = bell.fidelity_lower_bound(s_abs)
    return out


def analyze_tomography(datasets) -> dict:
    """Maximum-likelihood two-qubit state, its Bell-state fidelities with bootstrap standard
    errors, and the closest Bell state."""
    counts = _array(datasets, schemas.TOMOGRAPHY_COUNTS)
    try:
        out = tomography.maximum_likelihood(counts).to_dict()
        errors = tomography.bell_fidelity_errors(counts)
    except ValueError as error:
        raise AnalysisError(f"tomography: {error}") from error
    out["bell_fidelities_stderr"] = errors
    best = max(out["bell_fidelities"], key=out["bell_fidelities"].get)
    out["bell_state"] = best
    out["bell_fidelity"] = out["bell_fidelities"][best]
    out["bell_fidelity_stderr"] = errors[best]
    return out


def analyze_results(results) -> dict:
    """All recognised sections of an ARTIQ results file (analysis.results.ResultsFile).

    A section that cannot be analysed holds {"error": message} instead of numbers.
    """
    datasets = results.datasets
    names = list(datasets)
    sections: dict[str, dict] = {}

    def run(section: str, function, *args) -> None:
        try:
            sections[section] = function(*args)
        except (AnalysisError, ValueError, KeyError, TypeError) as error:
            sections[section] = {"error": str(error)}

    for name, fields in sorted(schemas.calibration_names(names).items()):
        run(f"calib.{name}", analyze_calibration, datasets, name, fields)
    if schemas.READOUT_BRIGHT in datasets and schemas.READOUT_DARK in datasets:
        run("readout", analyze_readout, datasets)
    if all(k in datasets for k in schemas.HERALDING_REQUIRED):
        run("heralding", analyze_heralding, datasets)
    if all(k in datasets for k in schemas.BELL_ROUNDS):
        run("bell", analyze_bell, datasets)
    if schemas.TOMOGRAPHY_COUNTS in datasets:
        run("tomography", analyze_tomography, datasets)
    if schemas.REPEATER_PAIRS in datasets:
        from analysis.repeater import summarize_run
        run("repeater", lambda: summarize_run(datasets).to_dict())
    return sections


PAIR_CHANNELS = 4  # coincidences are counted between the busiest few detectors (one pass each)


def analyze_timetags(path, coincidence_window_s: float = 1e-9) -> dict:
    """Tag counts and mean rates per detector of a Photon-HDF5 file, and coincidences
    within +-coincidence_window_s between each pair of the PAIR_CHANNELS busiest detectors,
    with the number expected from uncorrelated (Poisson) streams and their ratio (the
    normalised coincidence rate, g2 averaged over the window). Bounded memory."""
    from analysis.timetags import coincidences
    from analysis.timetags.io import TimeTagReader

    if not (np.isfinite(coincidence_window_s) and coincidence_window_s >= 0):
        raise ValueError(f"coincidence window must be >= 0 s, got {coincidence_window_s!r}")
    with TimeTagReader(path) as reader:
        counts = np.zeros(256, dtype=np.int64)
        first = last = None
        for timestamps, detectors in reader.iter_chunks():
            if timestamps.size == 0:
                continue
            counts += np.bincount(detectors, minlength=256)[:256]
            first = int(timestamps[0]) if first is None else first
            last = int(timestamps[-1])
        unit = reader.timestamps_unit
        duration = reader.acquisition_duration
        if duration is None and first is not None and last > first:
            duration = (last - first) * unit
        channels = {}
        for channel in np.flatnonzero(counts):
            c = int(counts[channel])
            channels[str(int(channel))] = {
                "tags": c,
                "rate_hz": c / duration if duration else None,
                "rate_stderr_hz": np.sqrt(c) / duration if duration else None}
        window = int(round(coincidence_window_s / unit))
        busiest = sorted(np.flatnonzero(counts), key=lambda c: -counts[c])[:PAIR_CHANNELS]
        pairs = {}
        for i, a in enumerate(sorted(busiest)):
            for b in sorted(busiest)[i + 1:]:
                found = coincidences(reader, int(a), int(b), window)
                # |dt| <= window takes 2 window + 1 integer values of dt
                expected = (counts[a] * counts[b] * (2 * window + 1) * unit / duration
                            if duration else None)
                pair = {"coincidences": int(found), "accidental_expected": expected}
                if expected:
                    pair["ratio"] = found / expected
                    pair["ratio_stderr"] = np.sqrt(max(found, 1)) / expected
                pairs[f"{int(a)}-{int(b)}"] = pair
        return {"timetags": {"n_tags": reader.n_tags, "timestamps_unit_s": unit,
                             "duration_s": duration, "coincidence_window_s": window * unit,
                             "channels": channels, "pairs": pairs}}


# ----------------------------------------------------------------------------- plots

def timetag_rate_trace(path, n_bins: int = 200) -> tuple[np.ndarray, float, dict[int, np.ndarray]]:
    """Tags per detector in `n_bins` equal time bins from the first to the last tag of a
    Photon-HDF5 file, read chunk by chunk (bounded memory).

    Returns (bin centres in s since the first tag, bin width in s, {detector: counts}); the
    last bin includes the last tag. An empty file gives empty arrays and no detectors.
    """
    from analysis.timetags.io import TimeTagReader

    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    n_bins = int(n_bins)
    with TimeTagReader(path) as reader:
        if reader.n_tags == 0:
            return np.empty(0), 0.0, {}
        first = int(next(reader.iter_chunks(1, 0, 1))[0][0])
        last = int(next(reader.iter_chunks(1, reader.n_tags - 1))[0][0])
        span = max(last - first, 1)
        counts = np.zeros(256 * n_bins, dtype=np.int64)
        for timestamps, detectors in reader.iter_chunks():
            index = np.minimum(((timestamps - first) * (n_bins / span)).astype(np.int64),
                               n_bins - 1)
            counts += np.bincount(detectors.astype(np.int64) * n_bins + index,
                                  minlength=counts.size)
        bin_s = span * reader.timestamps_unit / n_bins
    counts = counts.reshape(256, n_bins)
    channels = {int(c): counts[c] for c in np.flatnonzero(counts.sum(axis=1))}
    return (np.arange(n_bins) + 0.5) * bin_s, bin_s, channels


def write_timetag_plots(path, directory, n_bins: int = 200) -> list[Path]:
    """PNG of the count rate (Hz) of each detector of a Photon-HDF5 file versus time (s)
    (see `timetag_rate_trace`); returns the paths written (none for a file without tags)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    times_s, bin_s, channels = timetag_rate_trace(path, n_bins)
    if not channels:
        return []
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots()
    for channel, counts in channels.items():
        ax.plot(times_s, counts / bin_s, drawstyle="steps-mid", label=f"detector {channel}")
    ax.set_xlabel("time since first tag (s)")
    ax.set_ylabel("count rate (Hz)")
    ax.legend()
    target = out_dir / "timetags_rates.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return [target]


def write_plots(results, sections: dict, directory) -> list[Path]:
    """PNG plots of the recognised sections into `directory` (created); returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    datasets = results.datasets if results is not None else {}

    def save(fig, name: str) -> None:
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    for section, numbers in sections.items():
        if "error" in numbers:
            continue
        if section.startswith("calib."):
            name = section.split(".", 1)[1]
            x = _array(datasets, f"calib.{name}.x")
            y = _array(datasets, f"calib.{name}.y")
            fig, ax = plt.subplots()
            ax.plot(x, y, "o", label="data")
            model = fit_models.MODELS[numbers["model"]]
            if all(np.isfinite(v) for v in numbers["values"].values()):
                grid = np.linspace(np.min(x), np.max(x), 400)
                ax.plot(grid, model.function(grid, *numbers["values"].values()), "-",
                        label=f"{model.name} fit")
            ax.set_xlabel(f"calib.{name}.x")
            ax.set_ylabel(f"calib.{name}.y")
            ax.legend()
            save(fig, section.replace(".", "_"))
        elif section == "readout":
            bright = _array(datasets, schemas.READOUT_BRIGHT)
            dark = _array(datasets, schemas.READOUT_DARK)
            bins = np.arange(0, max(bright.max(), dark.max()) + 2) - 0.5
            fig, ax = plt.subplots()
            ax.hist(bright, bins, alpha=0.6, label="bright")
            ax.hist(dark, bins, alpha=0.6, label="dark")
            ax.axvline(numbers["threshold"] + 0.5, color="k", ls="--", label="threshold")
            ax.set_xlabel("photon counts")
            ax.legend()
            save(fig, "readout")
        elif section == "bell":
            fig, ax = plt.subplots()
            e = np.asarray(numbers["correlators"]).ravel()
            err = np.asarray(numbers["correlator_errors"]).ravel()
            ax.bar(["E00", "E01", "E10", "E11"], e, yerr=err)
            ax.set_title(f"S = {numbers['chsh']:.4f} +- {numbers['chsh_stderr']:.4f}")
            save(fig, "bell")
        elif section == "tomography":
            fig, axes = plt.subplots(1, 2, figsize=(9, 4))
            labels = ["00", "01", "10", "11"]
            for ax, part in zip(axes, ("rho_real", "rho_imag"), strict=True):
                image = ax.imshow(np.asarray(numbers[part]), vmin=-0.5, vmax=0.5, cmap="RdBu")
                ax.set_xticks(range(4), labels)
                ax.set_yticks(range(4), labels)
                ax.set_title(f"{'Re' if part == 'rho_real' else 'Im'} rho")
            fig.colorbar(image, ax=list(axes))
            fig.suptitle(f"F({numbers['bell_state']}) = {numbers['bell_fidelity']:.4f} +- "
                         f"{numbers['bell_fidelity_stderr']:.4f}")
            save(fig, "tomography")
        elif section == "heralding" and schemas.HERALDING_TIMES in datasets:
            ref = numbers.get("ref_period_s", schemas.DEFAULT_REF_PERIOD_S)
            times = np.sort(_array(datasets, schemas.HERALDING_TIMES).astype(np.int64)) * ref
            if times.size > 1:
                fig, ax = plt.subplots()
                ax.hist(np.diff(times), bins=50)
                ax.set_xlabel("time between heralds (s)")
                ax.set_yscale("log")
                save(fig, "heralding")
    return written
