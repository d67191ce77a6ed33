# Device database of the ionlink quantum-network node.
#
# Hardware (DESIGN.md section 2): a Kasli 2.0 master (node A, DRTIO destination 0) and a
# Kasli 2.0 satellite (node B, DRTIO destination 1), each with the same EEM layout:
#
#   EEM0     DIO   ttl0-3 inputs (TTLInOut), ttl4-7 outputs (TTLOut)
#   EEM1     DIO   ttl8-15 outputs (TTLOut)
#   EEM2/3   Urukul AD9910 "urukul0": 397, 866, 854, 729 nm AOMs
#   EEM4/5   Urukul AD9910 "urukul1": 393 nm AOM, spares
#   EEM6     Zotino (trap and piezo voltages)
#   EEM7     Sampler
#   (then the board's three user LEDs, led0-2, as ARTIQ's template appends them)
#
# RTIO channels are numbered in peripheral order from 0, as ARTIQ's device-database
# template assigns them; the satellite's carry its destination in bits 16 and up.
# The simulation (ionlink run) reads this same file and maps every class to its simulated
# twin: nobody keeps a second description of the hardware.

core_addr = "kasli-node-a.lab"

device_db = {
    "core": {
        "type": "local",
        "module": "artiq.coredevice.core",
        "class": "Core",
        "arguments": {
            "host": core_addr,
            "ref_period": 1e-9,
            "analyzer_proxy": "core_analyzer",
            "target": "rv32g",
            "satellite_cpu_targets": {1: "rv32g"},  # keyed by DRTIO destination
        },
    },
    "core_log": {
        "type": "controller",
        "host": "::1",
        "port": 1068,
        "command": "aqctl_corelog -p {port} --bind {bind} " + core_addr,
    },
    "core_analyzer": {
        "type": "controller",
        "host": "::1",
        "port_proxy": 1385,
        "port": 1386,
        "command": "aqctl_coreanalyzer_proxy --port-proxy {port_proxy} "
                   "--port-control {port} --bind {bind} " + core_addr,
    },
    "core_cache": {"type": "local", "module": "artiq.coredevice.cache", "class": "CoreCache"},
    "core_dma": {"type": "local", "module": "artiq.coredevice.dma", "class": "CoreDMA"},
}


def _ttl(name, channel, direction):
    device_db[name] = {
        "type": "local",
        "module": "artiq.coredevice.ttl",
        "class": "TTLInOut" if direction == "input" else "TTLOut",
        "arguments": {"channel": channel},
    }


def _dio(prefix, first_ttl, channel, low, high):
    """One DIO EEM: 8 TTL channels, banks of 4 all inputs or all outputs."""
    for i in range(8):
        _ttl(f"{prefix}ttl{first_ttl + i}", channel + i, low if i < 4 else high)
    return channel + 8


def _urukul_ad9910(prefix, name, channel):
    """One Urukul with four AD9910 channels: SPI, IO_UPDATE, four RF switches, CPLD."""
    full = prefix + name
    device_db["spi_" + full] = {
        "type": "local",
        "module": "artiq.coredevice.spi2",
        "class": "SPIMaster",
        "arguments": {"channel": channel},
    }
    _ttl(f"ttl_{full}_io_update", channel + 1, "output")
    for i in range(4):
        _ttl(f"ttl_{full}_sw{i}", channel + 2 + i, "output")
    device_db[full + "_cpld"] = {
        "type": "local",
        "module": "artiq.coredevice.urukul",
        "class": "CPLD",
        "arguments": {
            "spi_device": "spi_" + full,
            "sync_device": None,
            "io_update_device": f"ttl_{full}_io_update",
            "refclk": 125e6,
            "clk_sel": 2,
            "clk_div": 0,
            "proto_rev": 9,
        },
    }
    for i in range(4):
        device_db[f"{full}_ch{i}"] = {
            "type": "local",
            "module": "artiq.coredevice.ad9910",
            "class": "AD9910",
            "arguments": {
                "pll_n": 32,
                "pll_en": 1,
                "chip_select": 4 + i,
                "cpld_device": full + "_cpld",
                "sw_device": f"ttl_{full}_sw{i}",
            },
        }
    return channel + 6


def _zotino(prefix, channel):
    device_db[prefix + "spi_zotino0"] = {
        "type": "local",
        "module": "artiq.coredevice.spi2",
        "class": "SPIMaster",
        "arguments": {"channel": channel},
    }
    _ttl(prefix + "ttl_zotino0_ldac", channel + 1, "output")
    _ttl(prefix + "ttl_zotino0_clr", channel + 2, "output")
    device_db[prefix + "zotino0"] = {
        "type": "local",
        "module": "artiq.coredevice.zotino",
        "class": "Zotino",
        "arguments": {
            "spi_device": prefix + "spi_zotino0",
            "ldac_device": prefix + "ttl_zotino0_ldac",
            "clr_device": prefix + "ttl_zotino0_clr",
        },
    }
    return channel + 3


def _sampler(prefix, channel):
    device_db[prefix + "spi_sampler0_adc"] = {
        "type": "local",
        "module": "artiq.coredevice.spi2",
        "class": "SPIMaster",
        "arguments": {"channel": channel},
    }
    device_db[prefix + "spi_sampler0_pgia"] = {
        "type": "local",
        "module": "artiq.coredevice.spi2",
        "class": "SPIMaster",
        "arguments": {"channel": channel + 1},
    }
    _ttl(prefix + "ttl_sampler0_cnv", channel + 2, "output")
    device_db[prefix + "sampler0"] = {
        "type": "local",
        "module": "artiq.coredevice.sampler",
        "class": "Sampler",
        "arguments": {
            "spi_adc_device": prefix + "spi_sampler0_adc",
            "spi_pgia_device": prefix + "spi_sampler0_pgia",
            "cnv_device": prefix + "ttl_sampler0_cnv",
            "hw_rev": "v2.2",
        },
    }
    return channel + 3


def _kasli(prefix, destination):
    """The EEM layout shared by both nodes; returns the next free channel."""
    channel = destination << 16
    channel = _dio(prefix, 0, channel, "input", "output")
    channel = _dio(prefix, 8, channel, "output", "output")
    channel = _urukul_ad9910(prefix, "urukul0", channel)
    channel = _urukul_ad9910(prefix, "urukul1", channel)
    channel = _zotino(prefix, channel)
    channel = _sampler(prefix, channel)
    for i in range(3):  # the board's user LEDs follow the peripherals, as the template has
        _ttl(f"{prefix}led{i}", channel + i, "output")
    return channel + 3


_kasli("", 0)         # node A: DRTIO master
_kasli("sat1_", 1)    # node B: DRTIO satellite, destination 1

# Host-side instruments, served as ARTIQ controllers (simulation mode: add --simulation).
# Extra keys are formatted into "command" (as artiq_ctlmgr formats the entry); the
# simulation parses the same command line. timetagger "channels": TAGGER_INPUT=TTL device
# on the same detector output (the one place this wiring is written). wavemeter
# "channels": SWITCH_CHANNEL=LASER_NODE; "actuators": LASER_NODE=KIND:DEVICE:CHANNEL:HZ_PER_UNIT.
device_db["timetagger"] = {
    "type": "controller",
    "host": "::1",
    "port": 3270,
    "channels": "1=det_station_0,2=det_station_1,3=pmt_a,4=pmt_b",
    "command": "aqctl_ionlink_timetagger -p {port} --bind {bind} -d 2138000XYZ "
               "--channels {channels}",
}
device_db["wavemeter"] = {
    "type": "controller",
    "host": "::1",
    "port": 3271,
    "channels": "1=397_a,2=866_a,3=854_a,4=729_a,5=393_a,6=397_b,7=866_b,8=729_b",
    "actuators": "866_a=dac:dac_a:30:9e7,854_a=dac:dac_a:31:9e7,866_b=dac:dac_b:30:9e7",
    "command": "aqctl_ionlink_wavemeter -p {port} --bind {bind} -d ws8-2345 "
               "--channels {channels} --actuators {actuators}",
}

# Readable aliases: the roles the experiments (and the virtual node) use.
for _node, _prefix in (("a", ""), ("b", "sat1_")):
    device_db["pmt_" + _node] = _prefix + "ttl0"
    device_db["dds_397_" + _node] = _prefix + "urukul0_ch0"
    device_db["dds_866_" + _node] = _prefix + "urukul0_ch1"
    device_db["dds_854_" + _node] = _prefix + "urukul0_ch2"
    device_db["dds_729_" + _node] = _prefix + "urukul0_ch3"
    device_db["dds_393_" + _node] = _prefix + "urukul1_ch0"
    device_db["cpld_" + _node] = _prefix + "urukul0_cpld"
    device_db["cpld_393_" + _node] = _prefix + "urukul1_cpld"
    device_db["ttl_tagger_sync_" + _node] = _prefix + "ttl4"
    device_db["dac_" + _node] = _prefix + "zotino0"
    device_db["adc_" + _node] = _prefix + "sampler0"

# The heralding station's two detectors (SNSPDs) are wired to node A's input bank.
device_db["det_station_0"] = "ttl1"
device_db["det_station_1"] = "ttl2"
