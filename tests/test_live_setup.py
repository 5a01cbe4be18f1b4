"""``kdcam devices`` over a fake sysfs tree, and ``kdcam setup`` for each OS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from live_fixtures import error_line, run_kdcam

from engines.errors import KdcamError
from vcam.media.devices import VideoDevice, devices_report, list_linux_video_devices, list_loopback_devices
from vcam.setup_steps import apply_linux_setup, linux_plan, setup_text


def fake_sysfs(root: Path) -> Path:
    """A real camera (video0 + its metadata node video1) and two loopback devices."""
    usb = root / "devices" / "pci0000:00" / "usb1" / "1-1" / "video4linux"
    virtual = root / "devices" / "virtual" / "video4linux"
    nodes = {
        0: (usb, "Integrated Camera: Integrated C"),
        1: (usb, "Integrated Camera: Integrated C"),
        10: (virtual, "KD Sharpen Cam"),
        11: (virtual, "Dummy video device"),
    }
    cls = root / "class" / "video4linux"
    cls.mkdir(parents=True)
    for index, (parent, name) in nodes.items():
        node = parent / f"video{index}"
        node.mkdir(parents=True)
        (node / "name").write_text(name + "\n")
        os.symlink(node, cls / f"video{index}")
    return root


def test_loopback_devices_come_with_their_labels(tmp_path):
    sysfs = fake_sysfs(tmp_path)
    assert list_loopback_devices(sysfs_root=sysfs) == [
        VideoDevice(10, "/dev/video10", "KD Sharpen Cam", True),
        VideoDevice(11, "/dev/video11", "Dummy video device", True),
    ]
    every = list_linux_video_devices(sysfs_root=sysfs)
    assert [(d.index, d.virtual) for d in every] == [(0, False), (1, False), (10, True), (11, True)]


def test_devices_report_lists_cameras_and_virtual_cameras(tmp_path):
    text = devices_report(system="Linux", sysfs_root=fake_sysfs(tmp_path))
    assert "  0: Integrated Camera: Integrated C  [/dev/video0]" in text
    assert "  /dev/video10: KD Sharpen Cam" in text
    cameras = text.split("Virtual cameras")[0]
    assert "video10" not in cameras, "loopback devices are not listed as cameras"


def test_devices_report_elsewhere_probes_indices():
    text = devices_report(system="Windows", probe=lambda: [VideoDevice(0, "", "", False)])
    assert "  0: (name not reported)" in text and "kdcam setup" in text


def test_devices_command_with_an_empty_sysfs(tmp_path, capsys, monkeypatch):
    if os.uname().sysname != "Linux":
        pytest.skip("sysfs exists on Linux only")
    code, out, _ = run_kdcam(["devices", "--sysfs-root", str(tmp_path)], capsys, monkeypatch)
    assert code == 0 and "none found" in out and "run `kdcam setup`" in out


def test_linux_steps_name_every_piece():
    text = setup_text(os_name="linux", which=lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    assert "modprobe v4l2loopback devices=1 video_nr=10 'card_label=KD Sharpen Cam' exclusive_caps=1" in text
    assert "/etc/modprobe.d/kdcam.conf" in text and "/etc/modules-load.d/kdcam.conf" in text
    assert 'options v4l2loopback devices=1 video_nr=10 card_label="KD Sharpen Cam" exclusive_caps=1' in text
    assert "apt-get install -y v4l2loopback-dkms v4l2loopback-utils" in text
    assert "Secure Boot" in text and "mokutil --import" in text and "MOK" in text


def test_windows_and_macos_steps():
    windows = setup_text(os_name="windows")
    assert '"/i:UnityCaptureName=KD Sharpen Cam"' in windows and "OBS Virtual Camera" in windows
    macos = setup_text(os_name="macos")
    assert "OBS Studio 30" in macos and "fixed" in macos and "extension" in macos


def test_setup_os_flag_prints_another_os(capsys, monkeypatch):
    code, out, _ = run_kdcam(["setup", "--os", "windows"], capsys, monkeypatch)
    assert code == 0 and "Unity Capture" in out


def test_setup_unknown_os_is_one_line(capsys, monkeypatch):
    code, _, err = run_kdcam(["setup", "--os", "beos"], capsys, monkeypatch)
    assert code == 1 and "unknown --os 'beos'" in error_line(err)


def test_apply_needs_root():
    with pytest.raises(KdcamError, match="must run as root: sudo kdcam setup --apply"):
        apply_linux_setup(is_root=lambda: False)


def test_apply_runs_the_printed_steps(tmp_path):
    ran = []
    (tmp_path / "sys" / "module" / "v4l2loopback").mkdir(parents=True)  # already loaded
    apply_linux_setup(
        root=tmp_path / "root",
        sysfs_root=tmp_path / "sys",
        is_root=lambda: True,
        run=ran.append,
        which=lambda name: "/usr/bin/apt-get" if name == "apt-get" else None,
        log=lambda _line: None,
    )
    plan = linux_plan(which=lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    assert ran == [plan.install, ["modprobe", "-r", "v4l2loopback"], plan.load]
    assert plan.load == [
        "modprobe",
        "v4l2loopback",
        "devices=1",
        "video_nr=10",
        "card_label=KD Sharpen Cam",
        "exclusive_caps=1",
    ]
    conf = (tmp_path / "root" / "etc" / "modprobe.d" / "kdcam.conf").read_text()
    assert conf == 'options v4l2loopback devices=1 video_nr=10 card_label="KD Sharpen Cam" exclusive_caps=1\n'
    assert (tmp_path / "root" / "etc" / "modules-load.d" / "kdcam.conf").read_text() == "v4l2loopback\n"
