"""How executed notebooks become report pages: code hidden, nothing fetched from the network, a compact style."""

from __future__ import annotations

from pathlib import Path

from nbconvert import HTMLExporter

#: nbconvert templates shipped with the lab (``kdq``: JupyterLab's layout without CDN scripts, lean CSS).
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def report_exporter() -> HTMLExporter:
    """An HTML exporter for report pages (see :data:`TEMPLATES`)."""
    return HTMLExporter(
        template_name="kdq",
        extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
