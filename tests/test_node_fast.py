"""The virtual node's hot-path shortcuts reproduce what they replace.

- ``_fast.choose`` draws exactly as ``Generator.choice(p=...)`` (index and stream state);
- emission phases computed on demand from a snapshot equal the phase taken at emission;
- dephasing-noise phases logged on a photon batch are drawn, when needed, in the order an
  eager evolution draws them; when not needed their time joins the noise lag (no draws);
- both nodes' photon efficiencies at once equal ``photon_efficiency`` per node.
"""

import math
import random

import numpy as np
import pytest

from ionlink.node import VirtualNetwork
from ionlink.node._fast import choose
from ionlink.node.drift import OrnsteinUhlenbeck
from ionlink.node.ion import D, E
from ionlink.node.photons import PhotonBatch
from ionlink.node.wiring import NODES, example_device_db
from ionlink.sim.world import PHASE_MODE_CONTINUOUS, PHASE_MODE_TRACKING, DDSState


def test_choose_draws_exactly_as_generator_choice():
    r = random.Random(1)
    for _ in range(3000):
        n = r.choice([2, 3, 4])
        w = np.array([r.random() ** r.choice([1, 3, 12]) for _ in range(n)])
        if r.random() < 0.3:
            w[r.randrange(n)] = 0.0
        if w.sum() == 0:
            continue
        seed = r.randrange(1 << 30)
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        assert int(a.choice(n, p=w / w.sum())) == choose(b, w.tolist())
        assert a.bit_generator.state == b.bit_generator.state


def test_choose_rejects_weights_without_mass():
    with pytest.raises(ValueError, match="weights"):
        choose(np.random.default_rng(0), [0.0, 0.0, 0.0, 0.0])


def _network(seed=5):
    net = VirtualNetwork(example_device_db(), seed=seed)
    dev = net.wiring.devices
    for n in NODES:
        net.output(0, dev[f"dds_729_{n}"], "dds",
                   DDSState(80.3e6, 0.25, 1.0, PHASE_MODE_CONTINUOUS, -1))
    net.flush(1)
    return net


@pytest.mark.parametrize("level", [D, E])
def test_emission_phase_on_demand_equals_phase_at_emission(level):
    net = _network()
    rng = random.Random(level)
    t = 1_000
    for _ in range(20):
        t += rng.randrange(1, 3_000_000)
        for i in range(2):
            ion, las = net.ions[i], net.ions[i].lasers["729"]
            snap = (i, t, las.dds, las.acc_turns, las.acc_t_mu, ion.atom_phase_turns,
                    ion.atom_phase_e_turns, ion.phase_t_mu)
            lazy = net._emission_phase(level, snap)
            eager = net._laser_phase_rad(i, t, with_offset=False, level=level)  # syncs
            # the same integral, summed in other pieces: equal to rounding (turns ~1e-16
            # relative to the accumulated phase, times 2 pi x passes)
            assert abs(math.remainder(lazy - eager, 2 * math.pi)) < 1e-9
        if rng.random() < 0.5:     # a new 729 profile in between (continuous phase)
            dev = net.wiring.devices[f"dds_729_{rng.choice(NODES)}"]
            net.output(t, dev, "dds", DDSState(80.3e6 + rng.random() * 1e3, 0.0, 1.0,
                                               PHASE_MODE_TRACKING, 0))
            net.flush(t + 1)


def test_deferred_noise_phases_are_drawn_in_eager_order():
    net = _network()
    ion = net.ions[1]
    reference = OrnsteinUhlenbeck(np.random.default_rng(0), ion.noise.sigma, ion.noise.tau)
    reference._rng.bit_generator.state = ion.noise._rng.bit_generator.state
    reference.x = ion.noise.x
    ion.noise_lag_s = 3e-6
    batch = PhotonBatch(None, [np.array([1.0, 0, 0, 0])] * 2)
    steps = [1e-7, 2.5e-6, 4e-8]
    factories = [batch.defer_phase(1, dt) for dt in steps]
    ion.noise_pending.extend(factories)
    with pytest.raises(RuntimeError, match="before it was drawn"):
        factories[0]()
    net._settle_noise(ion)
    reference.advance(3e-6)
    expected = [reference.advance(dt)[1] for dt in steps]
    assert [f.phase for f in factories] == expected
    assert ion.noise.x == reference.x and ion.noise_lag_s == 0.0 and not ion.noise_pending
    u = factories[1]()
    assert np.allclose(np.diag(u), [1, np.exp(-1j * expected[1]), 1,
                                    np.exp(-1j * expected[1])])


def test_unneeded_noise_phases_join_the_lag_without_draws():
    net = _network()
    ion = net.ions[0]
    state = ion.noise._rng.bit_generator.state
    ion.noise_lag_s = 1e-6
    batch = PhotonBatch(None, [np.array([1.0, 0, 0, 0])] * 2)
    ion.noise_pending.extend(batch.defer_phase(0, dt) for dt in (2e-6, 5e-7))
    net._drop_noise(ion)
    assert ion.noise_lag_s == pytest.approx(3.5e-6, rel=1e-12)
    assert not ion.noise_pending
    assert ion.noise._rng.bit_generator.state == state


def test_efficiencies_of_both_nodes_equal_per_node_values():
    net = _network()
    for lab in (0.0, 0.37, 12.5, 3600.0):
        assert net._efficiencies(lab) == (net.photon_efficiency(0, lab),
                                          net.photon_efficiency(1, lab))


@pytest.mark.parametrize("shape", [(5, 2, 2), (9, 3, 2), (17, 3, 3)])
def test_joint_kraus_operators_equal_the_tensor_contraction(shape):
    from ionlink.node.photons import _combine

    rng = np.random.default_rng(sum(shape))
    k, na, nb = shape

    def cplx(*s):
        return rng.normal(size=s) + 1j * rng.normal(size=s)

    coeffs, ops_a, ops_b = cplx(k, na, nb), cplx(na, 4, 4), cplx(nb, 4, 4)
    ref = np.einsum("kxy,xai,ybj->kabij", coeffs, ops_a, ops_b).reshape(k, 16, 16)
    got = _combine(coeffs, ops_a, ops_b)
    # the same sums in another order: equal to rounding (a few ulps of the terms' size)
    assert np.abs(got - ref).max() < 1e-13 * np.abs(ref).max()
    # and one term by hand: K_0 = sum_xy c_0xy kron(A_x, B_y)
    by_hand = sum(coeffs[0, x, y] * np.kron(ops_a[x], ops_b[y])
                  for x in range(na) for y in range(nb))
    assert np.allclose(got[0], by_hand, rtol=1e-12, atol=0)
