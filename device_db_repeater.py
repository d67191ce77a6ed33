# Device database of the repeater chain A - R - B.
#
# Nodes A (Kasli master) and B (satellite, DRTIO destination 1) are exactly as in
# device_db.py, which this file extends; the repeater R is a third Kasli 2.0, DRTIO satellite
# destination 2 ("sat2_"), with two 40Ca+ ions in one trap:
#
#   EEM0     DIO   ttl0-3 inputs: PMT channels of ion ra and ion rb (individual readout:
#                  the two ions imaged onto separate PMTs), the R-B station's two SNSPDs;
#                  ttl4-7 outputs
#   EEM1     DIO   ttl8-15 outputs
#   EEM2/3   Urukul AD9910 "urukul0": 397 nm (global), 866 nm (global), 854 nm path of ion
#                  ra, 854 nm path of ion rb
#   EEM4/5   Urukul AD9910 "urukul1": individually addressed 729 nm on ra and on rb, the
#                  two tones (blue, red sideband) of the global bichromatic 729 nm MS beam
#   EEM6/7   Urukul AD9910 "urukul2": 393 nm path of ra (photons towards A), of rb
#                  (photons towards B), two spares
#   EEM8     Zotino, EEM9 Sampler, then the user LEDs
#
# The A-R link's station detectors are node A's det_station_0/1 inputs; the R-B link's sit
# on R's input bank. Run: ionlink run --device-db device_db_repeater.py
#   --node ionlink/node/repeater_node.toml repository/repeater/repeater_chain.py

import os
import runpy

_base = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "device_db.py"))
device_db = _base["device_db"]
device_db["core"]["arguments"]["satellite_cpu_targets"][2] = "rv32g"


def _repeater(prefix, destination):
    """R's EEM layout (see the header); returns the next free channel."""
    channel = destination << 16
    channel = _base["_dio"](prefix, 0, channel, "input", "output")
    channel = _base["_dio"](prefix, 8, channel, "output", "output")
    channel = _base["_urukul_ad9910"](prefix, "urukul0", channel)
    channel = _base["_urukul_ad9910"](prefix, "urukul1", channel)
    channel = _base["_urukul_ad9910"](prefix, "urukul2", channel)
    channel = _base["_zotino"](prefix, channel)
    channel = _base["_sampler"](prefix, channel)
    for i in range(3):
        _base["_ttl"](f"{prefix}led{i}", channel + i, "output")
    return channel + 3


_repeater("sat2_", 2)

# Readable aliases of the chain (roles of ionlink.node.chain.chain_roles).
device_db["pmt_ra"] = "sat2_ttl0"
device_db["pmt_rb"] = "sat2_ttl1"
device_db["dds_397_r"] = "sat2_urukul0_ch0"
device_db["dds_866_r"] = "sat2_urukul0_ch1"
device_db["dds_854_ra"] = "sat2_urukul0_ch2"
device_db["dds_854_rb"] = "sat2_urukul0_ch3"
device_db["dds_729_ra"] = "sat2_urukul1_ch0"
device_db["dds_729_rb"] = "sat2_urukul1_ch1"
device_db["dds_729_ms_blue_r"] = "sat2_urukul1_ch2"
device_db["dds_729_ms_red_r"] = "sat2_urukul1_ch3"
device_db["dds_393_ra"] = "sat2_urukul2_ch0"
device_db["dds_393_rb"] = "sat2_urukul2_ch1"
device_db["cpld_r"] = "sat2_urukul0_cpld"
device_db["cpld_729_r"] = "sat2_urukul1_cpld"
device_db["cpld_393_r"] = "sat2_urukul2_cpld"
device_db["ttl_tagger_sync_r"] = "sat2_ttl4"
device_db["dac_r"] = "sat2_zotino0"
device_db["adc_r"] = "sat2_sampler0"
device_db["det_ar_0"] = "det_station_0"
device_db["det_ar_1"] = "det_station_1"
device_db["det_rb_0"] = "sat2_ttl2"
device_db["det_rb_1"] = "sat2_ttl3"
