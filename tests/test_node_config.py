import pytest

from ionlink.node import NodeConfigError, VirtualNetwork, WiringError, load_node_config
from ionlink.node.wiring import build_wiring, example_device_db


def test_defaults_load_and_are_plausible():
    cfg = load_node_config()
    assert cfg.ion.d52_lifetime_s == pytest.approx(1.168)
    assert 5e-6 <= cfg.laser_729.pi_time_at_full_amplitude_s <= 10e-6


def test_override_file_and_errors_name_the_key(tmp_path):
    good = tmp_path / "lab.toml"
    good.write_text("[fibre]\nlength_a_km = 12.5\n")
    assert load_node_config(good).fibre.length_a_km == 12.5
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text("[fibre]\nlenght_a_km = 1.0\n")
    with pytest.raises(NodeConfigError, match="fibre.lenght_a_km"):
        load_node_config(bad_key)
    bad_value = tmp_path / "bad2.toml"
    bad_value.write_text("[station]\ndetector_efficiency = 1.5\n")
    with pytest.raises(NodeConfigError, match="station.detector_efficiency"):
        load_node_config(bad_value)
    with pytest.raises(NodeConfigError, match="photon.wavepacket_shape"):
        load_node_config().replace(photon={"wavepacket_shape": "square"})


def test_wiring_resolves_aliases_and_names_missing_role():
    db = example_device_db()
    w = build_wiring(db)
    assert w.devices["pmt_a"] == "ttl0"
    assert w.dds[db["dds_729_b"]] == ("b", "729")
    del db["dds_393_b"]
    with pytest.raises(WiringError, match="dds_393_b"):
        VirtualNetwork(db)


def test_protocol_and_station_options_are_checked(tmp_path):
    lab = tmp_path / "two_photon.toml"
    lab.write_text('[protocol]\nscheme = "two_photon"\ntime_bin_separation_s = 4e-6\n')
    cfg = load_node_config(lab)
    assert (cfg.protocol.scheme, cfg.protocol.time_bin_separation_s) == ("two_photon", 4e-6)
    with pytest.raises(NodeConfigError, match="protocol.scheme"):
        load_node_config().replace(protocol={"scheme": "three_photon"})
    with pytest.raises(NodeConfigError, match="station.mode_overlap"):
        load_node_config().replace(station={"mode_overlap": 1.2})
    with pytest.raises(ValueError, match="record_retention_s"):
        VirtualNetwork(example_device_db(), record_retention_s=0.0)
