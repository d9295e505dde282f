"""Electrochemically active material on hand-built volumes with known answers."""
import numpy as np
import pytest

from microsim import Volume
from microsim.analysis import active_material, parse_face

SE, AM, CBD, PORE = 0, 1, 2, 3
TABLE = {"SE": {"label": SE, "material": "Li6PS5Cl"}, "NMC": {"label": AM, "material": "NMC811"},
         "CBD": {"label": CBD, "material": "carbon_black"}, "pore": {"label": PORE, "material": "pore"}}


def _volume(lab, vs=1.0):
    return Volume(lab, TABLE, voxel_size_um=vs)


def test_particle_with_electrolyte_but_no_electron_path_is_inactive():
    lab = np.full((8, 6, 6), SE, np.uint8)
    lab[3:5, 2:4, 2:4] = AM            # floating in electrolyte, far from the z = end face
    r = active_material(_volume(lab))
    assert r.n_particles == 1 and r.n_active_particles == 0
    assert r.fraction_ion_connected == 1.0
    assert r.fraction_electron_connected == 0.0
    assert r.fraction_active == 0.0 and r.fraction_inactive == 1.0
    assert r.fraction_interface_active == 0.0
    assert r.fraction_interface_ion == 1.0


def test_particle_with_both_paths_is_active_and_a_carbon_bridge_counts():
    lab = np.full((8, 6, 6), SE, np.uint8)
    lab[3:5, 2:4, 2:4] = AM            # particle
    lab[5:, 2, 2] = CBD                # carbon strand from the particle to the z = end face
    r = active_material(_volume(lab))
    assert r.electronic_phases == ("NMC", "CBD")
    assert r.n_active_particles == 1 and r.fraction_active == 1.0
    # every AM/SE face is active: the particle conducts and all electrolyte reaches z = 0
    assert r.fraction_interface_active == 1.0
    # without the carbon in the electronic network the particle is cut off
    r2 = active_material(_volume(lab), electronic="NMC")
    assert r2.fraction_active == 0.0


def test_particle_without_ionic_path_is_inactive():
    # the particle sits in an electrolyte pocket sealed by pores from the separator face
    lab = np.full((10, 7, 7), PORE, np.uint8)
    lab[2:8, 1:6, 1:6] = SE            # electrolyte pocket, not touching z = 0
    lab[4:10, 3, 3] = AM               # particle column reaching the collector at z = end
    r = active_material(_volume(lab))
    assert r.fraction_electron_connected == 1.0
    assert r.fraction_ion_connected == 0.0 and r.fraction_active == 0.0
    lab[0:2, 3, 3] = SE                # open a channel to the separator
    assert active_material(_volume(lab)).fraction_active == 1.0


def test_volume_and_interface_shares_count_particles_and_faces():
    lab = np.full((6, 5, 9), SE, np.uint8)
    lab[:, 0, 0] = AM                  # active: column from z = 0 to z = end (6 voxels)
    lab[2, 2, 4] = AM                  # inactive: single floating voxel
    lab[1:3, 4, 7:9] = AM              # inactive: 2x1x2 block (4 voxels)
    r = active_material(_volume(lab, (2.0, 1.0, 1.0)))
    assert (r.n_particles, r.n_active_particles) == (3, 1)
    assert r.fraction_active == pytest.approx(6 / 11)
    assert r.active_volume_fraction == pytest.approx(11 / lab.size)
    # faces with electrolyte; voxels of 2 x 1 x 1 um: z faces 1 um2, y and x faces 2 um2
    column = 6 * 2.0 + 6 * 2.0                 # its +y and +x sides (the others are box faces)
    single = 2 * 1.0 + 2 * 2.0 + 2 * 2.0
    block = 4 * 1.0 + 4 * 2.0 + 2 * 2.0        # z: 2 below + 2 above; -y side: 4; -x side: 2
    assert r.interface_area_um2 == pytest.approx(column + single + block)
    assert r.fraction_interface_active == pytest.approx(column / (column + single + block))


def test_faces_are_chosen_by_the_user():
    lab = np.full((5, 5, 8), SE, np.uint8)
    lab[2, 2, 5:] = AM                 # reaches x = end, not z = end
    v = _volume(lab)
    assert active_material(v).fraction_active == 0.0
    r = active_material(v, separator_face="x=0", collector_face="x=end")
    assert r.fraction_active == 1.0 and r.collector_face == "x=end"


def test_face_parsing_and_role_errors():
    assert parse_face("y=end") == ("y", -1)
    with pytest.raises(ValueError, match="AXIS=0 or AXIS=end"):
        parse_face("top")
    lab = np.zeros((3, 3, 3), np.uint8)
    v = Volume(lab, {"A": {"label": 0}})
    with pytest.raises(ValueError, match="no active phase"):
        active_material(v)
    with pytest.raises(ValueError, match="both active material and electrolyte"):
        active_material(_volume(lab), active="SE", electrolyte="SE")


def test_size_distribution_defaults_to_the_phases_named_active():
    from microsim.analysis import analyze_volume
    z, y, x = np.mgrid[:24, :24, :24]
    labels = np.zeros((24, 24, 24), np.uint8)                  # 0: electrolyte
    for c in ((6, 6, 6), (17, 17, 17)):
        labels[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 16] = 1   # spheres of radius 4
    labels[:, 11:13, :] = np.where(labels[:, 11:13, :] == 0, 2, labels[:, 11:13, :])  # a carbon sheet
    phases = {"SE": {"label": 0, "sigma_ionic_S_per_m": 1.0}, "CAM": {"label": 1},
              "C": {"label": 2, "sigma_electronic_S_per_m": 1.0}}
    vol = Volume(labels, phases)
    # no material in the table says which phase is active: naming it must be enough
    res = analyze_volume(vol, active="CAM", electrolyte="SE", electronic="C", rev_sizes=[12])
    assert [s.phase for s in res.psd] == ["CAM"] and "psd" not in res.skipped
    res = analyze_volume(vol, rev_sizes=[12])
    assert len(res.psd) == 0 and "active-material" in res.skipped["psd"]


def test_every_share_with_anisotropic_voxels_and_both_networks():
    # voxel (1, 2, 3) um: faces normal to z are 6 um^2, to y 3 um^2, to x 2 um^2
    lab = np.full((6, 5, 7), SE, np.uint8)
    lab[:, 1, 1] = AM                  # particle 1: column z = 0..end, active (6 voxels)
    lab[2, 3, 3:5] = AM                # particle 2: floating in electrolyte, no electron path (2 voxels)
    lab[3:6, 0, 6] = PORE              # a pore column in the corner ...
    lab[4:6, 0, 5] = AM                # particle 3: reaches z = end, in the pores' shadow (2 voxels)
    lab[0:2, 4, 5:7] = PORE            # pores at z = 0: not electrolyte
    r = active_material(_volume(lab, (1.0, 2.0, 3.0)))
    assert (r.n_particles, r.n_active_particles) == (3, 2)
    assert r.fraction_active == pytest.approx(8 / 10)
    assert r.fraction_electron_connected == pytest.approx(8 / 10)
    assert r.fraction_ion_connected == pytest.approx(10 / 10)
    assert r.fraction_inactive == pytest.approx(2 / 10)
    assert r.active_volume_fraction == pytest.approx(10 / 210)
    # AM / SE faces, counted by hand: z faces 6, y faces 3, x faces 2 um^2
    column = 2 * 6 * 3.0 + 2 * 6 * 2.0                      # its -y, +y, -x, +x sides, 6 faces each
    floating = 2 * 2 * 6.0 + 2 * 2 * 3.0 + 2 * 2.0          # above/below, y sides, two x ends
    # particle 3 at (z 4..5, y 0, x 5): -x side SE (2 faces), +x side pore, +y side SE (2), -y box,
    # below (z = 3) SE (1 face), z = end box
    third = 2 * 2.0 + 2 * 3.0 + 1 * 6.0
    assert r.interface_area_um2 == pytest.approx(column + floating + third)
    assert r.active_interface_area_um2 == pytest.approx(column + third)
    assert r.fraction_interface_active == pytest.approx((column + third) / (column + floating + third))
    assert r.fraction_interface_ion == 1.0
    assert r.fraction_interface_electron == pytest.approx((column + third) / (column + floating + third))
    # the ion network is all electrolyte (it reaches z = 0 everywhere but under the pores), the
    # electron network the AM touching z = end: the two columns (6 + 2 of 10 AM voxels)
    assert r.ion_network_fraction == 1.0
    assert r.electron_network_fraction == pytest.approx(8 / 10)
    d = r.to_dict()
    assert d["fraction_inactive"] == pytest.approx(0.2) and d["electronic_phases"] == ["NMC", "CBD"]
    assert d["interface_area_um2"] == r.interface_area_um2


def test_ion_and_electron_network_shares_differ():
    # electrolyte pocket sealed from the separator: half the electrolyte is cut off; all AM reaches z = end
    lab = np.full((8, 4, 4), SE, np.uint8)
    lab[4] = PORE                      # pore layer: the electrolyte below z = 4 is cut off from z = 0
    lab[:, 0, 0] = AM                  # one AM column from z = 0 to z = end (8 voxels)
    lab[1, 2, 2] = AM                  # and a floating AM voxel (no electron path)
    r = active_material(_volume(lab))
    n_se = int((lab == SE).sum())
    se_above = int((lab[:4] == SE).sum())
    assert r.ion_network_fraction == pytest.approx(se_above / n_se)
    assert r.electron_network_fraction == pytest.approx(8 / 9)
