"""report.html: one self-contained page that summarises a run.

The page has no scripts, no style sheets and no images by reference: the
figures are embedded as ``data:`` URIs, so it opens offline, can be mailed or
archived alone, and shows the same thing in ten years.
"""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Iterable, Sequence

from ..atomic import write_text_atomic

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
.meta { color: #555; } .warn { background: #fff4e5; border-left: 4px solid #e69f00; padding: 0.5em 1em; }
.ok { background: #eef8f0; border-left: 4px solid #009e73; padding: 0.5em 1em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
"""

_RESULT_COLUMNS = (("method", "method", None), ("carrier", "carrier", None), ("direction", "dir", None),
                   ("conducting_phases", "conducting phases", None), ("eps", "eps", ".4f"),
                   ("percolating_fraction", "percolating fraction", ".4f"),
                   ("sigma_eff_S_per_m", "sigma_eff (S/m)", ".4g"),
                   ("normalised_sigma", "sigma_eff / sigma_ref", ".4g"),
                   ("tau", "tau", ".4g"), ("tau_bruggeman", "tau Bruggeman", ".4g"),
                   ("tau_over_tau_bruggeman", "tau / tau_B", ".3g"), ("macmullin", "MacMullin N_M", ".4g"),
                   ("converged", "converged", None))

_FIGURE_CAPTIONS = {
    "phases": "Orthogonal mid-plane slices of the volume, coloured by phase.",
    "profiles": "Through-thickness profiles: phase fractions per slice, and the mean current density along each "
                "solve's transport direction per slice relative to its mean over the slices (for a solve along the "
                "profile axis it is 1 everywhere: the current is conserved).",
    "percolation": "Percolation classes of each conducting network: percolating (connects both faces), dead-end "
                   "(one face only) and isolated (neither); the bars give the shares for every direction.",
    "bruggeman": "Computed tortuosity factor against volume fraction, with the Bruggeman relation.",
}


def _fmt(value, spec: str | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return value
    if isinstance(value, (int, float)) and spec:
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return format(v, spec)
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v, spec) for v in value)
    return "-" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence], text_columns: Sequence[int] = ()) -> str:
    """An HTML table; every cell is escaped.

    >>> table(["a", "b"], [[1, "<x>"]], text_columns=[1])
    '<table><tr><th>a</th><th class="text">b</th></tr><tr><td>1</td><td class="text">&lt;x&gt;</td></tr></table>'
    """
    def cell(tag, i, v):
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"
    out = ["<table><tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return "".join(out) + "</table>"


def embedded_png(path: Path, alt: str) -> str:
    """An ``<img>`` that carries the PNG itself as a data: URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def results_table(rows: Sequence[dict]) -> str:
    """The summary rows of a run (or of a sweep) as an HTML table."""
    header = [h for _, h, _ in _RESULT_COLUMNS]
    body = [[_fmt(r.get(k), spec) for k, _, spec in _RESULT_COLUMNS] for r in rows]
    return table(header, body, text_columns=[0, 1, 2, 3])


def _inputs(doc: dict) -> str:
    vol, src, cfg = doc["volume"], doc["source"], doc["config"]
    items = [("run name", doc["name"]), ("source", src.get("kind", "?"))]
    if "path" in src:
        items.append(("file", Path(src["path"]).name))
        read = src.get("read", {})
        for line in read.get("provenance", [])[-1:]:
            items.append(("read", line))
    if "recipe" in src:
        items.append(("recipe", src["recipe"] if isinstance(src["recipe"], str) else "inline recipe"))
    if "segmentation" in src:
        seg = src["segmentation"]
        items.append(("segmentation", f"{seg['method']}, thresholds {_fmt(seg['thresholds'], '.4g')}"))
    items += [("shape (z, y, x)", " x ".join(map(str, vol["shape"]))),
              ("voxel size (dz, dy, dx)", _fmt(vol["voxel_size_um"], ".4g") + " um"),
              ("size (z, y, x)", _fmt(vol["size_um"], ".4g") + " um"),
              ("carriers", ", ".join(doc["networks"])),
              ("directions", ", ".join(sorted({r["direction"] for r in doc["summary"]}) or ["-"])),
              ("seed", doc["seed"])]
    fv = cfg.get("finite_volume", {})
    if fv.get("enabled", True):
        solvers = sorted({t["solver"]["method"] for t in doc["transport"] if t.get("solver")})
        criteria = ", ".join(f"{k} {fv[k]:g}" for k in ("tol", "rtol", "current_tol") if k in fv) or "default tolerance"
        problem = "cell problem" if fv.get("cell_problem") else "fixed potentials on the two faces"
        sides = "periodic" if fv.get("periodic_sides") or fv.get("cell_problem") else "no-flux"
        items.append(("finite volume", f"{', '.join(solvers) or fv.get('solver', 'default solver')}; {criteria}; "
                                       f"{problem}, {sides} sides"))
    if doc["random_walk"]:
        rw = doc["random_walk"][0]
        items.append(("random walk", f"{rw['walkers']} walkers x {rw['steps']} steps, {rw['boundary']} images"))
    out = [table(["", ""], items, text_columns=[0, 1])]
    fr = vol["phase_fractions"]
    prow = [[p["name"], p["label"], p.get("material") or "-", _fmt(p["sigma_ionic_S_per_m"], ".4g"),
             _fmt(p["sigma_electronic_S_per_m"], ".4g"), _fmt(fr.get(p["name"], 0.0), ".4f")] for p in vol["phases"]]
    out.append(table(["phase", "label", "material", "sigma ionic (S/m)", "sigma electronic (S/m)",
                      "volume fraction"], prow, text_columns=[0, 2]))
    if vol["provenance"]:
        out.append("<p class=\"meta\">Provenance: " + html.escape("; ".join(vol["provenance"])) + "</p>")
    return "\n".join(out)


def _microstructure(doc: dict) -> str:
    a = doc.get("analysis", {})
    out = []
    clusters = a.get("clusters", {})
    if clusters:
        rows = [[c, " + ".join(doc["networks"].get(c, [])), st["n_clusters"], _fmt(st["largest_fraction"], ".4f")]
                for c, st in clusters.items()]
        out.append("<h3>Connected clusters</h3>" + table(["carrier", "network", "clusters", "largest cluster share"],
                                                        rows, text_columns=[0, 1]))
    inter = a.get("interfaces")
    if inter:
        rows = [[p["phase_a"], p["phase_b"], _fmt(p["area_um2"], ".4g"), _fmt(p["specific_area_per_um"], ".4g"),
                 _fmt(p["face_count_area_um2"], ".4g")] for p in inter["pairs"]]
        out.append("<h3>Interfaces</h3>" + table(
            ["phase", "phase", "area (um^2)", "specific area (1/um)", "face-count area (um^2)"], rows,
            text_columns=[0, 1]) + f"<p class=\"meta\">{html.escape(inter.get('method', ''))}</p>")
    act = a.get("active_material")
    if act and "skipped" in act:
        out.append(f"<h3>Active material</h3><p>Not analysed: {html.escape(act['skipped'])}</p>")
    elif act:
        rows = [["active phases", " + ".join(act["active_phases"])],
                ["separator face / collector face", f"{act['separator_face']} / {act['collector_face']}"],
                ["particles (active / all)", f"{act['n_active_particles']} / {act['n_particles']}"],
                ["active share of the active-material volume", _fmt(act["fraction_active"], ".4f")],
                ["active share of the active-material / electrolyte interface",
                 _fmt(act["fraction_interface_active"], ".4f")]]
        out.append("<h3>Active material</h3>" + table(["", ""], rows, text_columns=[0, 1]))
    psd = a.get("particle_size", {})
    if psd:
        rows = [[name, r["method"], _fmt(r["d10_um"], ".3g"), _fmt(r["d50_um"], ".3g"), _fmt(r["d90_um"], ".3g"),
                 _fmt(r["n_particles"], None)] for name, r in psd.items()]
        out.append("<h3>Particle sizes</h3>" + table(["phase", "method", "d10 (um)", "d50 (um)", "d90 (um)",
                                                     "particles"], rows, text_columns=[0, 1]))
    return "\n".join(out)


def _solver_table(doc: dict) -> str:
    rows = []
    for t in doc["transport"]:
        s = t.get("solver")
        if s is None:
            rows.append([t["carrier"], t["direction"], "-", "-", "-", "-", "-", "-", t["message"]])
        else:
            rows.append([t["carrier"], t["direction"], s["method"], s["iterations"],
                         _fmt(s.get("error_estimate", "nan"), ".1e"), _fmt(s["relative_residual"], ".2e"),
                         _fmt(s["current_mismatch"], ".2e"), _fmt(s["time_s"], ".2f"), t["message"]])
    if not rows:
        return ""
    return table(["carrier", "dir", "solver", "iterations", "est. error of sigma_eff", "rel. residual",
                  "current mismatch", "time (s)", "status"], rows, text_columns=[0, 1, 2, 8])


def _percolation_table(doc: dict) -> str:
    rows = [[p["carrier"], p["direction"], " + ".join(p["phases"]) or "-", _fmt(p["volume_fraction"], ".4f"),
             _fmt(p["fraction_percolating"], ".4f"), _fmt(p["fraction_dead_end"], ".4f"),
             _fmt(p["fraction_isolated"], ".4f"), p["n_clusters"]] for p in doc["percolation"]]
    if not rows:
        return ""
    return table(["carrier", "dir", "network", "volume fraction", "percolating", "dead-end", "isolated", "clusters"],
                 rows, text_columns=[0, 1, 2])


def _random_walk_table(doc: dict) -> str:
    rows = []
    for rw in doc["random_walk"]:
        for d, a in rw["axes"].items():
            rows.append([rw["carrier"], d, _fmt(a["tau"], ".4g"), _fmt(a["tau_se"], ".2g"), _fmt(a["tau_rw"], ".4g"),
                         _fmt(a["sigma_eff_S_per_m"], ".4g"), _fmt(a["diffusive"], None)])
    if not rows:
        return ""
    return table(["carrier", "axis", "tau", "tau std. error", "tau_rw = D0/D_eff", "sigma_eff (S/m)", "diffusive"],
                 rows, text_columns=[0, 1])


def _figures(doc: dict, folder: Path) -> str:
    out = []
    for key, name in doc["files"]["figures"].items():
        path = folder / name
        if not path.is_file():
            continue
        caption = _FIGURE_CAPTIONS.get(key)
        if caption is None and key.startswith("potential"):
            caption = f"Potential for 1 V across the volume ({key[len('potential '):]}); grey: outside the " \
                      "percolating network."
        elif caption is None and key.startswith("current"):
            caption = f"Current-density magnitude ({key[len('current '):]}), logarithmic colour scale."
        elif caption is None:
            caption = key
        out.append(f"<figure>{embedded_png(path, key)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(out)


def _reproduce(doc: dict, folder: Path) -> str:
    cfg = folder / doc["files"]["config"]
    text = cfg.read_text() if cfg.is_file() else ""
    versions = ", ".join(f"{k} {v}" for k, v in doc["versions"].items() if k != "platform")
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in doc["timings_s"].items() if isinstance(v, (int, float)))
    return (f"<p>The run folder holds <code>config.toml</code>, this configuration with absolute paths. "
            f"Rerun it with</p><pre>microsim run config.toml --out NEW_FOLDER</pre>"
            f"<p>Seed {html.escape(str(doc['seed']))}; the result does not depend on the number of threads.</p>"
            f"<pre>{html.escape(text)}</pre>"
            f"<p class=\"meta\">Versions: {html.escape(versions)}; {html.escape(doc['versions'].get('platform', ''))}."
            f"</p><p class=\"meta\">Timings: {html.escape(timings)}.</p>"
            f"<p class=\"meta\">Started {html.escape(doc['started_utc'])}, finished {html.escape(doc['finished_utc'])}"
            f" (UTC); result.json schema {html.escape(doc['schema'])} version {doc['schema_version']}.</p>")


def render_report(doc: dict, folder: Path) -> str:
    """The HTML text of the report of a run whose files are in ``folder``."""
    warnings = doc["warnings"]
    if warnings:
        warn = "<div class=\"warn\"><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul></div>"
    else:
        warn = ("<div class=\"ok\">No warnings: every network percolates and every solve converged.</div>")
    sections = [
        ("Warnings", warn),
        ("Results", results_table(doc["summary"])
         + "<p class=\"meta\">tau = eps sigma_ref / sigma_eff (TauFactor's definition), tau_B = eps^-"
         + html.escape(_fmt(doc["bruggeman"]["alpha"], "g")) + ", MacMullin number N_M = sigma_ref / sigma_eff = "
         "tau / eps; sigma_ref is the volume-averaged conductivity of the conducting phases.</p>"),
        ("Inputs", _inputs(doc)),
        ("Percolation", _percolation_table(doc)),
        ("Microstructure", _microstructure(doc)),
        ("Solver", _solver_table(doc)),
        ("Random walk", _random_walk_table(doc)),
        ("Figures", _figures(doc, folder)),
        ("How to reproduce", _reproduce(doc, folder)),
    ]
    body = "\n".join(f"<section id=\"{html.escape(t.lower().replace(' ', '-'))}\"><h2>{html.escape(t)}</h2>\n{c}"
                     "</section>" for t, c in sections if c)
    title = f"microsim run: {doc['name']}"
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n<p class=\"meta\">microsim {html.escape(doc['versions']['microsim'])}, "
            f"{html.escape(doc['finished_utc'])}</p>\n{body}\n</body>\n</html>\n")


def write_report(path, doc: dict, folder: Path) -> Path:
    """Write report.html for the run document ``doc`` whose figures are in ``folder``."""
    path = Path(path)
    write_text_atomic(path, render_report(doc, Path(folder)))
    return path


def write_sweep_report(path, doc: dict, rows: Sequence[dict], folder: Path) -> Path:
    """Write the report.html of a sweep: the table of every case, the Bruggeman fits and their plots."""
    folder = Path(folder)
    params = doc["parameters"]
    state = "complete" if doc["complete"] else "incomplete (interrupted; run the same command again to resume)"
    n = {s: sum(1 for c in doc["cases"] if c["status"] == s) for s in ("done", "failed", "pending")}
    head = [("sweep", doc["name"]), ("state", state), ("cases", len(doc["cases"])), ("done", n["done"]),
            ("failed", n["failed"]), ("not run yet", n["pending"]), ("varied", ", ".join(params) or "-")]
    cols = [("name", "case", None)] + [(p, p.split(".")[-1], None) for p in params] + list(_RESULT_COLUMNS)
    body = [[_fmt(r.get(k), spec) if r.get("status") == "done" or k in ("name", *params) else
             (r.get("status") if k == "method" else "") for k, _, spec in cols] for r in rows]
    fits = [[f["method"], f["carrier"], f["direction"], f["n_cases"],
             f.get("skipped") or _fmt(f.get("prefactor"), ".4g"),
             "" if "skipped" in f else _fmt(f.get("alpha"), ".4g"),
             "" if "skipped" in f else (f.get("note") or _fmt(f.get("alpha_ci"), ".3g")),
             "" if "skipped" in f else _fmt(f.get("r_squared"), ".4f")] for f in doc["fits"]]
    failed = [[c["name"], c["id"]] for c in doc["cases"] if c["status"] == "failed"]
    figures = "\n".join(f"<figure>{embedded_png(folder / name, key)}<figcaption>{html.escape(key)}: tau against eps "
                        "over the sweep, with Bruggeman's relation and the least-squares fit tau = A eps^-alpha."
                        "</figcaption></figure>" for key, name in doc["figures"].items() if (folder / name).is_file())
    sections = [("Sweep", table(["", ""], head, text_columns=[0, 1])),
                ("Results", table([h for _, h, _ in cols], body, text_columns=list(range(len(params) + 5)))),
                ("Bruggeman fits", table(["method", "carrier", "direction", "cases", "A", "alpha", "alpha 95 % CI",
                                          "R^2"], fits, text_columns=[0, 1, 2, 4]) + figures),
                ("Failed cases", table(["case", "error record"], [[n_, f"failed/{i}.json"] for n_, i in failed],
                                       text_columns=[0, 1]) if failed else "<p>None.</p>"),
                ("How to reproduce", "<p>Each case folder under <code>cases/</code> is a complete run folder with "
                 "its own report. Run the sweep again (finished cases are skipped) with</p>"
                 "<pre>microsim sweep sweep.toml --out FOLDER</pre>")]
    text = "\n".join(f"<section><h2>{html.escape(t)}</h2>\n{c}</section>" for t, c in sections)
    title = f"microsim sweep: {doc['name']}"
    page = (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}"
            f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p class=\"meta\">written {html.escape(doc['written_utc'])}</p>\n{text}\n</body>\n</html>\n")
    write_text_atomic(path, page)
    return Path(path)
