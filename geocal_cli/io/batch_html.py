"""`batch.html`: a batch's summary as one self-contained page (inline CSS, script and picture;
no network), readable from a file browser at the beamline."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from geocal_cli.io.outputs import SIGNATURE, write_text

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#eee;cursor:pointer}td.l,th.l{text-align:left}
tr.failed td{background:#fde8e8}.jump{color:#b00}img{max-width:100%}"""

#: Sorts the item table by the clicked column (numbers as numbers).
SCRIPT = """document.querySelectorAll('th').forEach(function(th,i){th.onclick=function(){
var t=th.closest('table'),b=t.tBodies[0],r=Array.from(b.rows),d=th.dataset.d==='1'?-1:1;
th.dataset.d=d===1?'1':'0';r.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,
c=y.cells[i].dataset.v||y.cells[i].textContent,na=parseFloat(a),nc=parseFloat(c);
return d*(isNaN(na)||isNaN(nc)?a.localeCompare(c):na-nc)});r.forEach(function(x){b.appendChild(x)})}})"""


def _cell(value, places: int = 3) -> str:
    if isinstance(value, (int, float)) and value == value:
        return f'<td data-v="{value!r}">{value:.{places}f}</td>'
    return "<td></td>"


def write_html(path: Path, summary: dict, out_dir: Path, png: Path | None) -> None:
    """Write the page: counts, jumps, the trends picture, failures, a sortable item table
    linking each item's outputs (relative links, so the folder can be moved).

    Parameters
    ----------
    path : Path
    summary : dict
        The content of batch.json.
    out_dir : Path
        The batch's output folder (links are relative to it).
    png : Path or None
        The trends picture, embedded.
    """
    e = html.escape
    c = summary["counts"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='generator' content='{e(SIGNATURE)}'><title>geocal batch "
             f"{e(summary['subcommand'])}</title><style>{CSS}</style></head><body>",
             f"<h1>geocal batch {e(summary['subcommand'])}</h1>",
             f"<p>{summary['items']} items: {c['ok']} ok, {c['failed']} failed, "
             f"{c['skipped']} skipped, in {summary['duration_s']:.1f} s.</p>"]
    jumps = summary.get("series", {}).get("jumps", [])
    if jumps:
        parts.append("<h2>Jumps</h2><ul>" + "".join(
            f"<li class='jump'>{e(j['parameter'])} {j['move']:+.3g} {e(j['unit'])} between "
            f"{e(j['from'])} and {e(j['to'])} (accepted ±{j['limit']:.2g})</li>" for j in jumps)
            + "</ul>")
    if png is not None and png.is_file():
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h2>Trends</h2><img alt='trends' src='data:image/png;base64,{data}'>")
    if summary["failures"]:
        parts.append("<h2>Failures</h2><ul>" + "".join(
            f"<li>{e(Path(f['input']).name)}: exit {f['exit_code']}: {e(str(f['error']))}</li>"
            for f in summary["failures"]) + "</ul>")
    # The columns are the parameters the series follows (none for q-check or convert-poni).
    columns = list(summary.get("series", {}).get("parameters", {}))
    head = "".join(f"<th>{e(k)}</th>" for k in columns)
    parts.append(f"<h2>Items</h2><table id='items'><thead><tr><th class='l'>#</th>"
                 f"<th class='l'>input</th><th class='l'>status</th>{head}"
                 f"<th class='l'>outputs</th></tr></thead><tbody>")
    for i, r in enumerate(summary["records"]):
        res = r.get("results") or {}
        links = " ".join(f"<a href='{e(_rel(o['path'], out_dir))}'>{e(Path(o['path']).name)}</a>"
                         for o in r.get("outputs", []))
        parts.append(f"<tr class='{e(r['status'])}'><td class='l' data-v='{i}'>{i}</td>"
                     f"<td class='l'>{e(r['input'])}</td><td class='l'>{e(r['status'])}</td>"
                     + "".join(_cell(res.get(k)) for k in columns)
                     + f"<td class='l'>{links}</td></tr>")
    parts.append(f"</tbody></table><script>{SCRIPT}</script></body></html>\n")
    write_text(path, "".join(parts))


def _rel(path: str, out_dir: Path) -> str:
    return Path(os.path.relpath(path, out_dir.resolve())).as_posix()

