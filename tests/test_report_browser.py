"""The HTML report of a run, opened in a headless Chromium: every image loads, no console message."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from microsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")

CONFIG = """phases = "p.toml"
[run]
name = "report in a browser"
[source]
stack = "a.tif"
crop = "0:16,0:16,0:16"
voxel_size_um = 0.390625
[transport]
carriers = ["ionic", "electronic"]
directions = ["x", "z"]
[random_walk]
enabled = true
walkers = 256
steps = 256
"""

# Put first in <head>: collects errors and, once the page has loaded, writes what it found into the page.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)) || e));
}, true);
(function () {
  var original = console.error;
  console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
})();
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var bad = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.alt || i.src.slice(0, 60); });
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: images.length, bad: bad, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium installed (looked for " + ", ".join(BROWSERS) + "); install chromium to run "
                "this test")


def open_page(exe: str, page: Path, profile: Path) -> tuple[str, str]:
    args = [exe, "--headless", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=10000", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


@pytest.mark.slow
def test_run_report_in_a_headless_browser(tmp_path, monkeypatch, capsys):
    exe = browser()
    shutil.copy(SAMPLES / "electrode_64.tif", tmp_path / "a.tif")
    shutil.copy(SAMPLES / "electrode_phases.toml", tmp_path / "p.toml")
    (tmp_path / "c.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "c.toml", "--out", "o", "--quiet"]) == 0
    capsys.readouterr()
    report = tmp_path / "o" / "report.html"
    text = report.read_text()
    n_img = len(re.findall(r"<img\b", text))
    assert n_img >= 5  # phases, potentials, currents, profiles, percolation, Bruggeman, MSD

    # the report as written: the browser logs no console message for it
    _, log = open_page(exe, report, tmp_path / "profile1")
    console = [line for line in log.splitlines() if "CONSOLE" in line]
    assert console == [], console

    # with a probe: every image decoded, no error event
    probed = tmp_path / "o" / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    dom, log = open_page(exe, probed, tmp_path / "profile2")
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run: " + log[-1000:]
    found = json.loads(html.unescape(m.group(1)))
    assert found["images"] == n_img
    assert found["bad"] == [] and found["errors"] == [], found
