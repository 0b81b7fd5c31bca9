"""completions/ and man/ must be what `python -m geocal_cli._generate` writes, and the wheel
must install the man pages."""

import subprocess
import sys
import zipfile
from pathlib import Path

from geocal_cli._generate import generate

ROOT = Path(__file__).resolve().parent.parent


def test_committed_files_match_the_generator():
    files = generate()
    stale = []
    for rel, text in files.items():
        path = ROOT / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(rel))
    extra = {p.relative_to(ROOT) for p in (ROOT / "man").glob("*.1")} - set(files)
    assert not stale and not extra, (
        f"regenerate with `python -m geocal_cli._generate`: stale {stale}, extra {sorted(map(str, extra))}")


def test_every_subcommand_has_a_man_page_and_completion():
    import typer

    from geocal_cli.main import app

    subs = typer.main.get_command(app).commands
    files = generate()
    for sub in subs:
        assert Path("man") / f"geocal-{sub}.1" in files
        assert sub in files[Path("completions") / "geocal.bash"]


def test_wheel_installs_man_pages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("geocal-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for page in (ROOT / "man").glob("*.1"):
        assert any(n.endswith(f".data/data/share/man/man1/{page.name}") for n in names), page.name
